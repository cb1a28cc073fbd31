// Mail a process promised outlives it: stopped (SIGTERM) or killed (SIGKILL) while the SMTP
// server refuses mail, the next process delivers it, each mail once even when two drain it.
import { rmSync } from 'node:fs';
import type * as oidc from 'openid-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Browser } from '../support/browser.ts';
import { startChildServer, type ChildServer } from '../support/child-server.ts';
import { recipients, smtpEnv } from '../support/mailbox.ts';
import { askForResetLink } from '../support/password-reset.ts';
import { REDIRECT_URI, relyingParty } from '../support/relying-party.ts';
import { STORAGES, startTestServer, storageEnv, type Storage } from '../support/server.ts';
import { freePort } from '../support/services.ts';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp.ts';

const USER = { email: 'persistent@example.test', password: 'a persistent long password' };
const RESET_LINK = /\/interaction\/[^/\s]+\/reset\?token=[\w-]+/;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Storage with the user and a client in it, and the process settings that mail to `smtp`. */
async function prepare(storage: Storage, smtp: TestSmtpServer) {
  const env: Record<string, string> = {
    ...(await storageEnv(storage)),
    ...smtpEnv(smtp),
    RATE_LIMIT_RESET_IP: '1000/1m',
    RATE_LIMIT_RESET_ACCOUNT: '1000/1m',
  };
  const seeding = await startTestServer(env);
  await seeding.users.create({ ...USER, emailVerified: true });
  const client = await seeding.clients.create({ name: 'Mail app', redirectUris: [REDIRECT_URI] });
  await seeding.close();
  return { env, client };
}

describe.each(STORAGES)('mail promised by a process that stops, on %s storage', (storage) => {
  let smtp: TestSmtpServer;
  let env: Record<string, string>;
  let client: { clientId: string; clientSecret?: string | undefined };
  const children: ChildServer[] = [];
  beforeAll(async () => {
    smtp = await startSmtpServer();
    ({ env, client } = await prepare(storage, smtp));
  });
  afterEach(async () => {
    for (let c = children.pop(); c; c = children.pop()) await c.stop('SIGKILL');
    smtp.messages.length = 0;
    smtp.refuseNext(0);
  });
  afterAll(async () => {
    await smtp.stop();
    rmSync(env.DATA_DIR!, { recursive: true, force: true });
  });

  async function start(port: number) {
    const child = await startChildServer(env, port);
    children.push(child);
    const rp: oidc.Configuration = await relyingParty(
      child.url,
      client.clientId,
      client.clientSecret,
    );
    return { child, app: { server: { url: child.url }, rp } };
  }
  const resetMails = () =>
    smtp.messages.filter((m) => recipients(m).includes(USER.email) && RESET_LINK.test(m.text!));

  for (const signal of ['SIGTERM', 'SIGKILL'] as const)
    it(`delivers, once, the mail still waiting when the process got ${signal}`, async () => {
      const port = await freePort();
      smtp.refuseNext(Number.POSITIVE_INFINITY, 451);
      const first = await start(port);
      const asked = await askForResetLink(first.app, new Browser(), USER.email);
      expect(asked.status).toBe(200);
      for (const deadline = Date.now() + 5000; smtp.refused === 0; await sleep(20))
        if (Date.now() > deadline) throw new Error('no delivery was tried');
      // While it waits for its next try (1 s after the first), as mail spends an outage. A
      // process that dies in the middle of a send holds the mail until its claim lapses
      // (mail-outbox.test.ts).
      await sleep(400);
      await first.child.stop(signal);

      smtp.refuseNext(0);
      const restarted = Date.now();
      await start(port);
      const ready = Date.now() - restarted;
      await smtp.waitForMessage(() => resetMails().length > 0, 15_000);
      const delivered = Date.now() - restarted;
      console.log(
        `${storage}, ${signal}: next process ready in ${ready} ms, mail delivered ${delivered} ms after its start`,
      );
      await sleep(1500);
      expect(resetMails()).toHaveLength(1);
    });
});

describe('mail left by a stopped process, drained by two processes (PostgreSQL server)', () => {
  it('delivers each mail exactly once', async () => {
    const smtp = await startSmtpServer();
    const { env, client } = await prepare('postgres+redis', smtp);
    const children: ChildServer[] = [];
    try {
      smtp.refuseNext(Number.POSITIVE_INFINITY, 451);
      const first = await startChildServer(env);
      children.push(first);
      const rp = await relyingParty(first.url, client.clientId, client.clientSecret);
      const count = 12;
      for (let i = 0; i < count; i++)
        expect(
          (await askForResetLink({ server: { url: first.url }, rp }, new Browser(), USER.email))
            .status,
        ).toBe(200);
      for (const deadline = Date.now() + 10_000; smtp.refused < count; await sleep(20))
        if (Date.now() > deadline) throw new Error(`${smtp.refused} of ${count} deliveries tried`);
      await first.stop();

      smtp.refuseNext(0);
      children.push(...(await Promise.all([startChildServer(env), startChildServer(env)])));
      const links = () =>
        smtp.messages.map((m) => RESET_LINK.exec(m.text ?? '')?.[0]).filter(Boolean);
      for (const deadline = Date.now() + 20_000; links().length < count; await sleep(50))
        if (Date.now() > deadline) throw new Error(`${links().length} of ${count} delivered`);
      await sleep(2000);
      expect(links()).toHaveLength(count);
      expect(new Set(links()).size).toBe(count);
    } finally {
      for (const c of children) await c.stop('SIGKILL');
      await smtp.stop();
      rmSync(env.DATA_DIR!, { recursive: true, force: true });
    }
  }, 60_000);
});
