import { Eta } from 'eta';
import { ETA_SETTINGS } from '../views.ts';
import { MAIL_SUBJECTS, type MailTemplate, type MailTemplates } from './templates.ts';

export type RenderedMail = { subject: string; html: string; text: string };

/** Links go into href attributes: anything but http(s) (javascript:, data:) is a bug upstream. */
function assertWebLinks(data: object): void {
  for (const [key, value] of Object.entries(data)) {
    if (/link$/i.test(key) && !/^https?:\/\//i.test(String(value)))
      throw new Error(`mail data ${key} must be an http(s) URL`);
  }
}

/** Renders a mail's subject and its HTML and plain-text parts from views/mail/. */
export function createMailRenderer(productName: string) {
  const html = new Eta(ETA_SETTINGS);
  // Plain text is not HTML: escaping there would show the reader "&lt;" for "<".
  const text = new Eta({ ...ETA_SETTINGS, autoEscape: false });
  return {
    render<T extends MailTemplate>(template: T, data: MailTemplates[T]): RenderedMail {
      assertWebLinks(data);
      const subject = MAIL_SUBJECTS[template](productName);
      const it = { ...data, productName, subject };
      return {
        subject,
        html: html.render(`mail/${template}.html.eta`, it),
        text: text.render(`mail/${template}.text.eta`, it),
      };
    },
  };
}

export type MailRenderer = ReturnType<typeof createMailRenderer>;
