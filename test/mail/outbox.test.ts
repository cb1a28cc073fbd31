import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMailer } from '../../server/mail/mailer.ts';
import { MAIL_SUBJECTS } from '../../server/mail/templates.ts';
import {
  capturedLogger,
  mailerDeps,
  HTML_LINK,
  LINK,
  PRODUCT,
  SAMPLES,
  smtpMailOptions,
  TO,
} from '../support/mail.ts';

const deps = mailerDeps();

describe('mail outbox (development)', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'latchkey-outbox-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes an .eml file that parses back to the mail, and logs the file, never the link', async () => {
    const { log, lines } = capturedLogger();
    const outboxDir = join(dir, 'outbox'); // created on first use
    const mailer = createMailer(
      { ...smtpMailOptions(0), transport: 'outbox', outboxDir },
      deps(log),
    );
    await expect(mailer.verify()).resolves.toBeUndefined();
    const data = SAMPLES['verify-email'];
    const result = await mailer.send({ to: TO, template: 'verify-email', data });

    expect(result.sent).toBe(true);
    const files = readdirSync(outboxDir);
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(
      /^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}Z-verify-email-[0-9a-f]{8}\.eml$/,
    );
    const mail = await simpleParser(readFileSync(join(outboxDir, files[0]!)));
    expect(mail.subject).toBe(MAIL_SUBJECTS['verify-email'](PRODUCT));
    expect(mail.text).toContain(LINK);
    expect(mail.html).toContain(HTML_LINK);

    const written = lines.find((l) => l.msg === 'mail written to outbox');
    expect(written).toMatchObject({ level: 30, template: 'verify-email' });
    expect(written!.file).toBe(join(outboxDir, files[0]!));
    // The link carries a live token: no log line, at any level, shows it.
    for (const line of lines) expect(JSON.stringify(line)).not.toContain('secret-token-123');
    expect(JSON.stringify(written)).not.toContain(TO);
  });
});
