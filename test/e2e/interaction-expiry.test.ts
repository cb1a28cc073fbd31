import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDb } from '../../server/db.ts';
import { formAction, hiddenInput } from '../support/browser.ts';
import { freshPostgresUrl } from '../support/databases.ts';
import { Flow } from '../support/flow.ts';
import { REDIRECT_URI, relyingParty } from '../support/relying-party.ts';
import { startTestServer, storageEnv, type TestServer } from '../support/server.ts';

const USER = { email: 'ivy.interaction@example.test', password: 'ivy uses a long passphrase' };
const sleepUntil = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms - Date.now())));

/** Never-expiring copies of interactions left in the store. */
const everlasting: Record<string, (server: TestServer) => Promise<number>> = {
  redis: async (server) => {
    const redis = new Redis(server.env.REDIS_URL!);
    try {
      const keys = await redis.keys('latchkey:oidc:Interaction:*');
      const ttls = await Promise.all(keys.map((k) => redis.ttl(k)));
      return ttls.filter((ttl) => ttl === -1).length;
    } finally {
      await redis.quit();
    }
  },
  postgres: async (server) => {
    const db = await openDb({ databaseUrl: server.env.DATABASE_URL!, dataDir: '', poolMax: 1 });
    try {
      const rows = await db('oidc_payloads')
        .where({ model: 'Interaction' })
        .whereNull('expires_at');
      return rows.length;
    } finally {
      await db.destroy();
    }
  },
};

describe.each(Object.keys(everlasting))(
  'an interaction aborted in the second it expires (%s)',
  (storage) => {
    let server: TestServer;
    let rp: oidc.Configuration;
    beforeAll(async () => {
      const env =
        storage === 'redis'
          ? await storageEnv('postgres+redis')
          : {
              DATA_DIR: mkdtempSync(join(tmpdir(), 'latchkey-data-')),
              DATABASE_URL: await freshPostgresUrl(),
            };
      server = await startTestServer({ ...env, INTERACTION_TTL: '3' });
      const client = await server.clients.create({ name: 'App', redirectUris: [REDIRECT_URI] });
      rp = await relyingParty(server.url, client.clientId, client.clientSecret);
    });
    afterAll(() => server?.cleanup());

    it('leaves no copy that never expires (an anonymous sender could pile them up)', async () => {
      // Start 600 ms into a second: the stored copy outlives `exp` (whole seconds) by ~600 ms.
      await sleepUntil(Math.ceil(Date.now() / 1000) * 1000 + 600);
      const started = Date.now();
      const flow = new Flow(server, rp, USER);
      await flow.start();
      await sleepUntil((Math.floor(started / 1000) + 3) * 1000 + 100);
      // The sender does not follow the redirect to the resume (which would destroy it).
      const target = new URL(formAction(flow.html, '/abort'), server.url);
      const res = await flow.browser.post(target, { csrf: hiddenInput(flow.html, 'csrf') });
      expect(res.status).toBe(303);
      expect(await everlasting[storage]!(server)).toBe(0);
    });
  },
);
