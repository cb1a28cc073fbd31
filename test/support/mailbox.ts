import type { ParsedMail } from 'mailparser';
import type { TestSmtpServer } from './smtp.ts';

export const recipients = (mail: ParsedMail) =>
  [mail.to]
    .flat()
    .map((a) => a?.text ?? '')
    .join(', ');

/**
 * The first mail to `to` among those after the first `after` that holds a link matching `link`,
 * and that link. Other mails may come in between: notices go out in the background.
 */
export async function linkFromMail(
  smtp: TestSmtpServer,
  to: string,
  after: number,
  link: RegExp,
  /** What else the mail must say: background mails may arrive in another order than sent. */
  about?: RegExp,
) {
  const mail = await smtp.waitForMessage(
    (m) =>
      smtp.messages.indexOf(m) >= after &&
      recipients(m).includes(to) &&
      link.test(m.text ?? '') &&
      (!about || about.test(m.text ?? '')),
    5000,
  );
  return { mail, link: link.exec(mail.text ?? '')![0] };
}

/** Server settings that send mail to the test SMTP server, with no wait between two emails. */
export function smtpEnv(smtp: TestSmtpServer): Record<string, string> {
  return {
    MAIL_TRANSPORT: 'smtp',
    SMTP_HOST: '127.0.0.1',
    SMTP_PORT: String(smtp.port),
    SMTP_SECURITY: 'none',
    SMTP_POOL: 'false',
    EMAIL_RESEND_SECONDS: '0',
  };
}
