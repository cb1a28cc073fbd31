import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createMailer, type Mailer } from '../../server/mail/mailer.ts';
import { MAIL_SUBJECTS, MAIL_TEMPLATES } from '../../server/mail/templates.ts';
import {
  capturedLogger,
  mailerDeps,
  FROM_ADDRESS,
  HOSTILE_NAME,
  HTML_LINK,
  LINK,
  PRODUCT,
  SAMPLES,
  smtpMailOptions,
  TO,
} from '../support/mail.ts';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp.ts';

const deps = mailerDeps();

describe('mail templates', () => {
  let smtp: TestSmtpServer;
  let mailer: Mailer | undefined;
  beforeAll(async () => {
    smtp = await startSmtpServer();
  });
  afterEach(() => mailer?.close());
  afterAll(() => smtp.stop());

  it.each(MAIL_TEMPLATES)(
    '%s arrives with its subject, a text and an HTML part',
    async (template) => {
      const { log, lines } = capturedLogger();
      mailer = createMailer(smtpMailOptions(smtp.port), deps(log));
      const result = await mailer.send({ to: TO, template, data: SAMPLES[template] });

      expect(result).toEqual({ sent: true, messageId: expect.any(String) });
      const { messageId } = result as { messageId: string };
      const mail = await smtp.waitForMessage((m) => m.messageId === messageId);
      expect(mail.subject).toBe(MAIL_SUBJECTS[template](PRODUCT));
      expect(mail.to).toMatchObject({ value: [{ address: TO }] });
      expect(mail.from).toMatchObject({ value: [{ address: FROM_ADDRESS }] });
      expect(mail.text).toContain(LINK);
      expect(mail.text).toContain(HOSTILE_NAME); // plain text is not HTML: shown as typed
      const html = mail.html as string;
      expect(html).toContain(`href="${HTML_LINK}"`);
      expect(html).toContain('Ada &lt;script&gt;alert(1)&lt;/script&gt;');
      expect(html).not.toContain('<script');
      expect(html).toContain(PRODUCT);
      // The log says a mail went out and to whom (masked), never what it said.
      const logged = JSON.stringify(lines);
      expect(logged).toContain('mail sent');
      expect(logged).not.toContain('secret-token-123');
      expect(logged).not.toContain(TO);
    },
  );

  it('refuses a link that is not http(s) before sending anything', async () => {
    mailer = createMailer(smtpMailOptions(smtp.port), deps(capturedLogger().log));
    const data = { link: 'javascript:alert(1)', expiresInHours: 1 };
    await expect(mailer.send({ to: TO, template: 'verify-email', data })).rejects.toThrow(
      /must be an http\(s\) URL/,
    );
    expect(smtp.messages).toHaveLength(MAIL_TEMPLATES.length);
  });
});
