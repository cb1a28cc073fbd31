import { Redis } from 'ioredis';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser } from '../support/browser.ts';
import { freshPostgresUrl } from '../support/databases.ts';
import {
  REDIRECT_URI,
  relyingParty,
  signIn,
  silentAuthorizationUrl,
} from '../support/relying-party.ts';
import { startTestServer, storageEnv, type TestServer } from '../support/server.ts';
import { startRedisCluster } from '../support/services.ts';

const USER = { email: 'clustered@example.test', password: 'spread across three nodes' };

describe('Redis Cluster', () => {
  let cluster: Awaited<ReturnType<typeof startRedisCluster>>;
  let server: TestServer;
  let rp: oidc.Configuration;

  beforeAll(async () => {
    cluster = await startRedisCluster();
    server = await startTestServer({
      ...(await storageEnv('embedded')),
      DATABASE_URL: await freshPostgresUrl(),
      REDIS_CLUSTER_NODES: cluster.nodes.join(','),
    });
    await server.users.create({ ...USER, emailVerified: true });
    const client = await server.clients.create({
      name: 'Cluster app',
      redirectUris: [REDIRECT_URI],
    });
    rp = await relyingParty(server.url, client.clientId, client.clientSecret);
  });
  afterAll(async () => {
    await server?.cleanup();
    await cluster?.stop();
  });

  it('runs sign-in, refresh, revocation and sign-out everywhere with keys in many slots', async () => {
    const browser = new Browser();
    const tokens = await signIn(rp, browser, server.url, USER);
    const refreshed = await oidc.refreshTokenGrant(rp, tokens.refresh_token!);
    expect((await oidc.tokenIntrospection(rp, refreshed.access_token)).active).toBe(true);

    // Each node holds only its own slots' keys: more than one of them holds some of ours.
    const perNode = await Promise.all(
      cluster.nodes.map(async (node) => {
        const direct = new Redis(Number(node.split(':')[1]), '127.0.0.1');
        try {
          return await direct.keys('latchkey:oidc:*');
        } finally {
          direct.disconnect();
        }
      }),
    );
    expect(perNode.filter((keys) => keys.length > 0).length).toBeGreaterThan(1);

    await oidc.tokenRevocation(rp, refreshed.refresh_token!);
    expect((await oidc.tokenIntrospection(rp, refreshed.access_token)).active).toBe(false);

    const userId = (await server.users.findByEmail(USER.email))!.id;
    expect((await server.signOut.endSessions(userId)).ended).toBe(1);
    const silent = await browser.follow(
      await browser.get(await silentAuthorizationUrl(rp)),
      server.url,
    );
    expect(silent.url.searchParams.get('error')).toBe('login_required');
  });
});
