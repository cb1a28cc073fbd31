import { Redis } from 'ioredis';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshPostgresUrl } from '../support/databases.ts';
import { relyingParty } from '../support/relying-party.ts';
import { startTestServer, storageEnv, type TestServer } from '../support/server.ts';
import { startRedis, startSentinel, type Service } from '../support/services.ts';

describe('Redis through Sentinel', () => {
  let master: Service;
  let sentinel: Service & { port: number };
  let server: TestServer;

  beforeAll(async () => {
    master = await startRedis();
    sentinel = await startSentinel(Number(new URL(master.url).port));
    server = await startTestServer({
      ...(await storageEnv('embedded')),
      DATABASE_URL: await freshPostgresUrl(),
      REDIS_SENTINELS: `127.0.0.1:${sentinel.port}`,
    });
  });
  afterAll(async () => {
    await server?.cleanup();
    await sentinel?.stop();
    await master?.stop();
  });

  it('finds the master through the Sentinel and keeps short-lived state there', async () => {
    const { clientId, clientSecret } = await server.clients.create({
      name: 'Job',
      redirectUris: [],
      grantTypes: ['client_credentials'],
    });
    const rp = await relyingParty(server.url, clientId, clientSecret);
    const { access_token } = await oidc.clientCredentialsGrant(rp);
    expect((await oidc.tokenIntrospection(rp, access_token)).active).toBe(true);

    const direct = new Redis(master.url);
    try {
      expect(await direct.exists(`latchkey:oidc:ClientCredentials:${access_token}`)).toBe(1);
    } finally {
      await direct.quit();
    }
    const ready = (await (await fetch(`${server.url}/readyz`)).json()) as {
      checks: Record<string, string>;
    };
    expect(ready.checks).toEqual({ database: 'ok', redis: 'ok' });
  });
});
