import { randomBytes } from 'node:crypto';
import { access, constants, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Transporter } from 'nodemailer';
import type { Logger } from '../log.ts';
import type { MailTransport } from './transport.ts';

/** "2025-01-02T03-04-05.678Z": sorts by time; no colons, which some file systems refuse. */
function fileTime(date: Date): string {
  return date.toISOString().replaceAll(':', '-');
}

/**
 * Development delivery without an SMTP server: each message becomes an .eml file in `dir`
 * (open it in any mail client); the log names the file. The links in it carry live tokens, so
 * they are never logged, at any level (production refuses this transport: config/load.ts).
 */
export function createOutboxTransport(dir: string, log: Logger): MailTransport {
  // nodemailer is loaded by the first message (as the SMTP transport's is).
  let composer: Promise<Transporter> | undefined;
  const composerOf = () =>
    (composer ??= import('nodemailer').then(({ default: nodemailer }) =>
      nodemailer.createTransport({ streamTransport: true, buffer: true }),
    ));
  return {
    async deliver(mail) {
      const { from, to, subject, text, html, template } = mail;
      const info = await (await composerOf()).sendMail({ from, to, subject, text, html });
      const file = join(
        dir,
        `${fileTime(new Date())}-${template}-${randomBytes(4).toString('hex')}.eml`,
      );
      await mkdir(dir, { recursive: true, mode: 0o700 });
      // The links in it sign in or reset passwords: readable by this user only.
      await writeFile(file, info.message as Buffer, { mode: 0o600 });
      log.info({ template, to, file }, 'mail written to outbox');
      return info.messageId;
    },
    async verify() {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await access(dir, constants.W_OK);
    },
    close() {
      void composer?.then(
        (made) => made.close(),
        () => undefined,
      );
    },
  };
}
