import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { closeDb, openDb, type Db } from '../../server/db.ts';
import { createMailer, type MailOptions, type Mailer } from '../../server/mail/mailer.ts';
import { sweepGivenUpMail } from '../../server/mail/outbox-store.ts';
import { tempPostgresDb } from '../support/databases.ts';
import { tempEmbeddedDb } from '../support/embedded-db.ts';
import {
  capturedLogger,
  failedAttempts,
  LINK,
  SAMPLES,
  SEALING_KEY,
  smtpMailOptions,
  TO,
} from '../support/mail.ts';
import { freePort } from '../support/services.ts';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp.ts';

const RESET = { to: TO, template: 'password-reset', data: SAMPLES['password-reset'] } as const;
// Quick, shaped as in production: retries 20 ms, 40 ms … apart, at most 100 ms.
const QUICK = {
  backgroundRetry: { attempts: 3, baseDelayMs: 20 },
  outbox: { pollMs: 50, retryBaseMs: 20, retryMaxMs: 100, leaseMs: 10_000, maxAgeMs: 60_000 },
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
async function until(what: string, done: () => boolean | Promise<boolean>, timeoutMs = 5000) {
  for (const deadline = Date.now() + timeoutMs; !(await done()); await sleep(20))
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
}

const databases = { PGlite: tempEmbeddedDb, 'PostgreSQL server': tempPostgresDb };

describe.each(Object.keys(databases))('background mail kept in the outbox on %s', (name) => {
  let db: Db;
  let cleanup: () => Promise<void>;
  let smtp: TestSmtpServer;
  const mailers: Mailer[] = [];
  function startMailer(options: Partial<MailOptions> = {}) {
    const { log, lines } = capturedLogger();
    const mailer = createMailer(
      { ...smtpMailOptions(smtp.port), ...QUICK, ...options },
      { log, db, sealingKey: SEALING_KEY },
    );
    mailers.push(mailer);
    mailer.start();
    return { mailer, lines };
  }
  const rows = async (): Promise<Record<string, unknown>[]> =>
    (await db.raw('SELECT row_to_json(m)::text AS row FROM mail_outbox m')).rows.map(
      (r: { row: string }) => JSON.parse(r.row),
    );

  beforeAll(async () => {
    ({ db, cleanup } = await databases[name as keyof typeof databases]());
    smtp = await startSmtpServer();
  });
  afterEach(async () => {
    for (let m = mailers.pop(); m; m = mailers.pop()) await m.close();
    smtp.messages.length = 0;
    smtp.refuseNext(0);
    await smtp.start();
    await db('mail_outbox').delete();
  });
  afterAll(async () => {
    await smtp.stop();
    await cleanup();
  });

  it('delivers a mail asked for while the SMTP server was down, once, however long it stayed down', async () => {
    await smtp.stop();
    const { mailer, lines } = startMailer();
    mailer.sendInBackground(async () => RESET);
    // Well past the three attempts an in-memory retry would have given it.
    await until('ten failed deliveries', () => failedAttempts(lines).length >= 10);
    await smtp.start();
    await smtp.waitForMessage(() => true, 2000);
    await sleep(300);
    expect(smtp.messages).toHaveLength(1);
    expect(await rows()).toEqual([]);
  });

  it('keeps the waiting mail sealed: the stored row shows neither the link, the address nor the name', async () => {
    smtp.refuseNext(Number.POSITIVE_INFINITY, 451);
    const { mailer } = startMailer();
    mailer.sendInBackground(async () => RESET);
    await until('a refused delivery', () => smtp.refused > 0);
    const [row] = await rows();
    expect(row).toMatchObject({ template: 'password-reset', status: 'pending' });
    const stored = JSON.stringify(row).toLowerCase();
    for (const clear of ['secret-token-123', LINK, TO, 'ada.lovelace', 'lovelace', 'script'])
      expect(stored).not.toContain(clear.toLowerCase());

    smtp.refuseNext(0);
    const mail = await smtp.waitForMessage(() => true, 2000);
    expect(mail.text).toContain(LINK);
  });

  it('gives up on a mail refused for good (550): tried once, kept as failed without its content, the address masked in the log', async () => {
    const refusedBefore = smtp.refused;
    smtp.refuseNext(1, 550);
    const { mailer, lines } = startMailer();
    mailer.sendInBackground(async () => RESET);
    await until('the mail given up', () => lines.some((l) => l.msg === 'mail given up'));
    expect(lines.find((l) => l.msg === 'mail given up')).toMatchObject({
      template: 'password-reset',
      reason: 'EMESSAGE 550',
      failed: 1,
    });
    await sleep(300);
    expect(smtp.refused - refusedBefore).toBe(1);
    const [row] = await rows();
    expect(row).toMatchObject({ status: 'failed', message: null, attempts: 1 });
    const logged = JSON.stringify(lines);
    for (const secret of [TO, 'secret-token-123']) expect(logged).not.toContain(secret);

    // The next mail is not held up behind it.
    mailer.sendInBackground(async () => RESET);
    await smtp.waitForMessage(() => true, 2000);

    // A week on, the sweep forgets it; a mail given up today stays listed.
    await db('mail_outbox')
      .where({ status: 'failed' })
      .update({ created_at: db.raw(`now() - interval '8 days'`) });
    expect(await sweepGivenUpMail(db)).toBe(1);
    expect((await rows()).filter((r) => r.status === 'failed')).toHaveLength(0);
  });

  it('keeps a mail whose sending failed on a refused SMTP login (535) until the login is put right', async () => {
    const auth = { user: 'latchkey', password: 'right-password' };
    const guarded = await startSmtpServer({ auth });
    try {
      const wrong = smtpMailOptions(guarded.port, { ...auth, password: 'not-the-password' });
      const misconfigured = startMailer(wrong);
      misconfigured.mailer.sendInBackground(async () => RESET);
      await until('three refused logins', () => failedAttempts(misconfigured.lines).length >= 3);
      expect(misconfigured.lines.some((l) => l.msg === 'mail given up')).toBe(false);
      await misconfigured.mailer.close();

      // Set right, as after the operator's fix and restart.
      startMailer(smtpMailOptions(guarded.port, auth));
      await guarded.waitForMessage(() => true, 2000);
      await sleep(300);
      expect(guarded.messages).toHaveLength(1);
      expect(await rows()).toEqual([]);
    } finally {
      await guarded.stop();
    }
  });

  it('gives up on a mail whose links would be dead by the time it arrives', async () => {
    await smtp.stop();
    const { mailer, lines } = startMailer({ outbox: { ...QUICK.outbox, maxAgeMs: 300 } });
    mailer.sendInBackground(async () => RESET);
    await until('the mail given up', () => lines.some((l) => l.msg === 'mail given up'), 3000);
    await smtp.start();
    await sleep(300);
    expect(smtp.messages).toHaveLength(0);
    expect(await rows()).toEqual([expect.objectContaining({ status: 'failed', message: null })]);
  });

  it('prepares a background mail again when preparing it failed (the database away), and sends it once', async () => {
    const { mailer } = startMailer();
    let attempts = 0;
    mailer.sendInBackground(async () => {
      if (++attempts <= 2) throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
      return RESET;
    });
    await smtp.waitForMessage(() => true);
    await sleep(200);
    expect(attempts).toBe(3);
    expect(smtp.messages).toHaveLength(1);
  });

  it('leaves the waiting mail to the next process at shutdown instead of dropping it', async () => {
    await smtp.stop();
    const first = startMailer();
    first.mailer.sendInBackground(async () => RESET);
    await until('a failed delivery', () => failedAttempts(first.lines).length > 0);
    await first.mailer.close();
    mailers.splice(mailers.indexOf(first.mailer), 1);
    expect(await rows()).toHaveLength(1);

    await smtp.start();
    startMailer();
    await smtp.waitForMessage(() => true, 2000);
    await sleep(300);
    expect(smtp.messages).toHaveLength(1);
  });
});

describe('two processes draining one outbox (PostgreSQL server)', () => {
  let url: string;
  let cleanup: () => Promise<void>;
  let smtp: TestSmtpServer;
  const opened: Db[] = [];
  const mailers: Mailer[] = [];
  /** A mailer on a connection pool of its own, as another process has. */
  async function processMailer(port: number, outbox: Partial<typeof QUICK.outbox> = {}) {
    const db = await openDb({ databaseUrl: url, dataDir: '', poolMax: 4 });
    opened.push(db);
    const { log, lines } = capturedLogger();
    const mailer = createMailer(
      { ...smtpMailOptions(port), ...QUICK, outbox: { ...QUICK.outbox, ...outbox } },
      { log, db, sealingKey: SEALING_KEY },
    );
    mailers.push(mailer);
    return { mailer, lines, db };
  }

  beforeAll(async () => {
    ({ url, cleanup } = await tempPostgresDb());
    smtp = await startSmtpServer();
  });
  // A mailer left running would claim the next test's mail before the one under test.
  afterEach(async () => {
    for (let m = mailers.pop(); m; m = mailers.pop()) await m.close(0);
  });
  afterAll(async () => {
    for (const db of opened) await closeDb(db);
    await smtp.stop();
    await cleanup();
  });

  it('delivers each mail exactly once when both claim from it at the same time', async () => {
    // The first process cannot reach any SMTP server: what it asked for waits in the outbox.
    const first = await processMailer(await freePort());
    const count = 60;
    for (let i = 0; i < count; i++)
      first.mailer.sendInBackground(async () => ({
        ...RESET,
        data: { ...RESET.data, link: `https://id.example.test/reset?token=mail-${i}` },
      }));
    await until(`${count} mails stored`, async () => {
      const [row] = await first.db('mail_outbox').count({ n: '*' });
      return Number(row?.n) === count;
    });

    const [b, c] = [await processMailer(smtp.port), await processMailer(smtp.port)];
    b.mailer.start();
    c.mailer.start();
    await until(`${count} mails delivered`, () => smtp.messages.length >= count, 10_000);
    await sleep(500);
    const tokens = smtp.messages.map((m) => /token=(mail-\d+)/.exec(m.text ?? '')![1]);
    expect(tokens).toHaveLength(count);
    expect(new Set(tokens).size).toBe(count);
    const sent = (lines: Record<string, unknown>[]) =>
      lines.filter((l) => l.msg === 'mail sent').length;
    expect(sent(b.lines) + sent(c.lines)).toBe(count);
    expect(sent(b.lines)).toBeGreaterThan(0);
    expect(sent(c.lines)).toBeGreaterThan(0);
  });

  it('lets another process send a mail whose sender died mid-send, once its claim has lapsed', async () => {
    // An SMTP server that takes the connection and never greets: the send hangs there.
    const held: Socket[] = [];
    const hanging: Server = createServer((socket) => held.push(socket));
    await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
    const before = smtp.messages.length;
    try {
      const lease = { leaseMs: 500 };
      const dying = await processMailer((hanging.address() as { port: number }).port, lease);
      dying.mailer.start();
      dying.mailer.sendInBackground(async () => RESET);
      await until('the send to hang', () => held.length > 0);

      const next = await processMailer(smtp.port, lease);
      next.mailer.start();
      await smtp.waitForMessage(() => smtp.messages.length > before, 5000);
    } finally {
      for (const socket of held) socket.destroy();
      hanging.close();
    }
    await sleep(300);
    expect(smtp.messages.length - before).toBe(1);
  });
});
