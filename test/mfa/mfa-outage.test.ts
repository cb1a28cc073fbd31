import type * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshPostgresUrl } from '../support/databases.ts';
import { codeAt, recoveryCodes, setupKey, Flow } from '../support/flow.ts';
import { REDIRECT_URI, relyingParty } from '../support/relying-party.ts';
import { startTestServer, storageEnv, type TestServer } from '../support/server.ts';
import { startRedis, type RestartableService } from '../support/services.ts';

const USER = { email: 'otto.outage@example.test', password: 'otto uses a long passphrase' };

describe('a second factor sent while Redis is down', () => {
  let redis: RestartableService;
  let server: TestServer;
  let rp: oidc.Configuration;
  let secret = '';
  let codes: string[] = [];

  beforeAll(async () => {
    redis = await startRedis({ appendonly: true });
    server = await startTestServer({
      ...(await storageEnv('embedded')),
      DATABASE_URL: await freshPostgresUrl(),
      REDIS_URL: redis.url,
      DEPENDENCY_TIMEOUT_MS: '1000',
      MFA_POLICY: 'required',
    });
    await server.users.create({ ...USER, emailVerified: true });
    const client = await server.clients.create({ name: 'App', redirectUris: [REDIRECT_URI] });
    rp = await relyingParty(server.url, client.clientId, client.clientSecret);
    const flow = new Flow(server, rp, USER);
    await flow.start();
    await flow.login();
    secret = setupKey(flow.html);
    await flow.submit('/mfa/enrol', { code: await codeAt(secret) });
    codes = recoveryCodes(flow.html);
  });
  afterAll(async () => {
    await server?.cleanup();
    await redis?.stop();
  });

  it.each(['recovery', 'totp'] as const)(
    'the outage page does not carry the %s code typed',
    async (method) => {
      const flow = new Flow(server, rp, USER);
      await flow.start();
      await flow.login();
      await flow.get(`${flow.url.pathname}?method=${method}`);
      const code = method === 'recovery' ? codes[0]! : await codeAt(secret, 30);
      await redis.down();
      try {
        await flow.submit(`/mfa/${method}`, { code });
      } finally {
        await redis.up();
        while ((await fetch(`${server.url}/readyz`)).status !== 200)
          await new Promise((r) => setTimeout(r, 100));
      }
      expect(flow.status).toBe(503);
      expect(flow.html).toMatch(/try again/i);
      expect(flow.html).not.toContain(code);
    },
  );
});
