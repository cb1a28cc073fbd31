import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createMailer, type Mailer } from '../../server/mail/mailer.ts';
import {
  capturedLogger,
  failedAttempts,
  mailerDeps,
  SAMPLES,
  smtpMailOptions,
  TO,
} from '../support/mail.ts';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp.ts';

const RESET = { to: TO, template: 'password-reset', data: SAMPLES['password-reset'] } as const;

const deps = mailerDeps();
let mailer: Mailer | undefined;
afterEach(() => mailer?.close());

describe('mail delivery when the SMTP server fails', () => {
  let smtp: TestSmtpServer;
  beforeAll(async () => {
    smtp = await startSmtpServer();
  });
  afterEach(async () => {
    smtp.messages.length = 0;
    smtp.refuseNext(0);
    await smtp.start(); // listening again after a test that stopped it
  });
  afterAll(() => smtp.stop());

  it.each([false, true])(
    'resolves {sent:false} after every attempt while the server is down, and sends once it is back (pool: %s)',
    async (pool) => {
      const { log, lines } = capturedLogger();
      mailer = createMailer(smtpMailOptions(smtp.port, { pool }), deps(log));
      expect((await mailer.send(RESET)).sent).toBe(true); // with a pool, a connection stays open

      await smtp.stop();
      const down = await mailer.send(RESET);
      expect(down).toEqual({ sent: false, error: expect.stringMatching(/ECONNREFUSED/) });
      expect(failedAttempts(lines).map((l) => [l.level, l.attempt, l.willRetry])).toEqual([
        [40, 1, true],
        [40, 2, true],
        [40, 3, false],
      ]);
      await expect(mailer.verify()).rejects.toThrow(/ECONNREFUSED/);

      await smtp.start();
      await expect(mailer.verify()).resolves.toBeUndefined();
      expect((await mailer.send(RESET)).sent).toBe(true);
      expect(smtp.messages).toHaveLength(2);
    },
  );

  it.each([false, true])(
    'sends nothing once closed, even before its first message, opening no connection left behind (pool: %s)',
    async (pool) => {
      // A send after close() (a request or outbox drain still under way at shutdown) must not
      // make a transporter, and with a pool an open connection, that nothing closes any more.
      mailer = createMailer(smtpMailOptions(smtp.port, { pool }), deps(capturedLogger().log));
      await mailer.close(0);
      expect((await mailer.send(RESET)).sent).toBe(false);
      expect(smtp.messages).toHaveLength(0);
    },
  );

  it('retries a delivery refused with 451 and delivers exactly one message', async () => {
    const { log, lines } = capturedLogger();
    mailer = createMailer(smtpMailOptions(smtp.port), deps(log));
    smtp.refuseNext(1, 451);

    expect(await mailer.send(RESET)).toMatchObject({ sent: true });
    expect(smtp.messages).toHaveLength(1);
    expect(failedAttempts(lines)).toEqual([
      expect.objectContaining({
        attempt: 1,
        willRetry: true,
        err: expect.objectContaining({ responseCode: 451 }),
      }),
    ]);
  });

  it('does not retry a permanent rejection (550): the answer would be the same', async () => {
    const { log, lines } = capturedLogger();
    mailer = createMailer(smtpMailOptions(smtp.port), deps(log));
    smtp.refuseNext(5, 550);

    expect(await mailer.send(RESET)).toEqual({
      sent: false,
      error: expect.stringContaining('550'),
    });
    expect(failedAttempts(lines)).toHaveLength(1);
    expect(smtp.messages).toHaveLength(0);
  });
});

describe('mail delivery with SMTP authentication', () => {
  let smtp: TestSmtpServer;
  beforeAll(async () => {
    smtp = await startSmtpServer({ auth: { user: 'latchkey', password: 'right-password' } });
  });
  afterAll(() => smtp.stop());

  it('logs in with the configured user and password', async () => {
    const options = smtpMailOptions(smtp.port, { user: 'latchkey', password: 'right-password' });
    mailer = createMailer(options, deps(capturedLogger().log));
    await expect(mailer.verify()).resolves.toBeUndefined();
    expect(await mailer.send(RESET)).toMatchObject({ sent: true });
    expect(smtp.messages).toHaveLength(1);
  });

  it('resolves {sent:false} with a wrong password, without retrying the refused login', async () => {
    const { log, lines } = capturedLogger();
    const options = smtpMailOptions(smtp.port, { user: 'latchkey', password: 'not-the-password' });
    mailer = createMailer(options, deps(log));
    await expect(mailer.verify()).rejects.toThrow(/535/);

    expect(await mailer.send(RESET)).toEqual({
      sent: false,
      error: expect.stringContaining('535'),
    });
    expect(failedAttempts(lines)).toHaveLength(1);
    expect(JSON.stringify(lines)).not.toContain('not-the-password');
  });
});
