import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll } from 'vitest';
import { createLogger, type Logger } from '../../server/log.ts';
import type { MailerDeps, MailOptions } from '../../server/mail/mailer.ts';
import type { MailTemplate, MailTemplates } from '../../server/mail/templates.ts';
import { tempEmbeddedDb } from './embedded-db.ts';
import { TEST_SECRETS } from './server.ts';

export const PRODUCT = 'Latchkey Test';
export const FROM_ADDRESS = 'no-reply@latchkey.test';
export const TO = 'ada.lovelace@example.test';
export const LINK = 'https://id.example.test/link?token=secret-token-123&lang=en';
/** The link as it appears in HTML: `&` escaped inside the href. */
export const HTML_LINK = LINK.replace('&', '&amp;');
export const HOSTILE_NAME = 'Ada <script>alert(1)</script>';
const TIME = new Date('2025-03-04T05:06:07Z');

/** Data for every template, each with a name that must come out HTML-escaped. */
export const SAMPLES: { [T in MailTemplate]: MailTemplates[T] } = {
  'verify-email': { name: HOSTILE_NAME, link: LINK, expiresInHours: 24 },
  'password-reset': { name: HOSTILE_NAME, link: LINK, expiresInMinutes: 30 },
  'password-changed': { name: HOSTILE_NAME, link: LINK, expiresInDays: 7, time: TIME },
  'email-changed': {
    name: HOSTILE_NAME,
    link: LINK,
    expiresInDays: 7,
    time: TIME,
    newEmail: 'new@example.test',
  },
  'new-device': {
    name: HOSTILE_NAME,
    link: LINK,
    expiresInDays: 7,
    time: TIME,
    device: 'Firefox on Linux',
    ip: '203.0.113.7',
  },
  'registration-attempt': {
    name: HOSTILE_NAME,
    link: LINK,
    resetLink: 'https://id.example.test/reset',
  },
  'account-locked': {
    name: HOSTILE_NAME,
    link: LINK,
    until: TIME,
    resetLink: 'https://id.example.test/reset',
  },
  'email-in-use': { name: HOSTILE_NAME, link: LINK },
  'account-deleted': { name: HOSTILE_NAME, time: TIME, link: LINK },
  invitation: { name: HOSTILE_NAME, link: LINK, expiresInHours: 72 },
  'factor-changed': {
    name: HOSTILE_NAME,
    link: LINK,
    expiresInDays: 7,
    time: TIME,
    change: 'an authenticator app was added',
  },
};

export type LogLine = Record<string, unknown>;

/** A debug-level logger (the real one, masking included) whose JSON lines are kept. */
export function capturedLogger() {
  const lines: LogLine[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(JSON.parse(String(chunk)) as LogLine);
      done();
    },
  });
  return { log: createLogger('debug', sink), lines };
}

export const SEALING_KEY = Buffer.from(TEST_SECRETS.SEALING_KEY, 'base64');

/**
 * What the mailers of a test file need besides a logger: a migrated PGlite for their outbox,
 * opened before the file's tests and removed after them.
 */
export function mailerDeps(): (log: Logger) => MailerDeps {
  let temp: Awaited<ReturnType<typeof tempEmbeddedDb>> | undefined;
  beforeAll(async () => {
    temp = await tempEmbeddedDb();
  });
  afterAll(() => temp?.cleanup());
  return (log) => ({ log, db: temp!.db, sealingKey: SEALING_KEY });
}

export const failedAttempts = (lines: LogLine[]) =>
  lines.filter((l) => l.msg === 'mail delivery failed');

/** Mailer options for plain SMTP to the test server on `port`. */
export function smtpMailOptions(
  port: number,
  smtp: Partial<MailOptions['smtp']> = {},
): MailOptions {
  return {
    transport: 'smtp',
    smtp: { host: '127.0.0.1', port, secure: 'none', pool: false, ...smtp },
    from: `Latchkey <${FROM_ADDRESS}>`,
    productName: PRODUCT,
    outboxDir: join(tmpdir(), 'latchkey-unused-outbox'),
    // Small delays keep the tests fast; the backoff is shaped as in production.
    retry: { attempts: 3, baseDelayMs: 20 },
  };
}
