import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiAudience, apiCall, apiClient } from '../support/admin-api.ts';
import { freshPostgresUrl } from '../support/databases.ts';
import { tokenRequest } from '../support/relying-party.ts';
import { freePort, startRedis, type RestartableService } from '../support/services.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

// Review of 24d299d (server/clients/change-news.ts): client changes reach the other processes
// by Redis pub/sub, which delivers at most once, to whoever is subscribed at that moment. A
// subscriber whose connection dropped (a network blip, a Redis failover, an output buffer
// overflow) reconnects and subscribes again, but what it missed meanwhile stays cached for
// CLIENT_CACHE_SECONDS. A Redis of its own, as the fault (CONFIG SET) applies to every client.

describe('a client change whose pub/sub message Redis drops (review)', () => {
  let redis: RestartableService;
  let control: Redis;
  let one: TestServer;
  let two: TestServer;
  let admin: string;

  beforeAll(async () => {
    redis = await startRedis();
    control = new Redis(redis.url);
    const port = await freePort();
    const env = {
      DATA_DIR: mkdtempSync(join(tmpdir(), 'latchkey-data-')),
      DATABASE_URL: await freshPostgresUrl(),
      REDIS_URL: redis.url,
      ISSUER: `http://127.0.0.1:${port}`,
      RATE_LIMIT_ADMIN_API: 'off',
    };
    one = await startTestServer({ ...env, PORT: String(port) });
    two = await startTestServer({
      ...env,
      DATA_DIR: mkdtempSync(join(tmpdir(), 'latchkey-data-')),
      PORT: String(await freePort()),
    });
    admin = await (await apiClient(one, ['clients:write', 'keys:write'])).token();
  });
  afterAll(async () => {
    await control?.quit();
    await two?.cleanup();
    await one?.cleanup();
    await redis?.stop();
  });

  const token = (server: TestServer, client: { clientId: string; clientSecret: string }) =>
    tokenRequest(server.url, client, {
      grant_type: 'client_credentials',
      resource: apiAudience(one),
      scope: 'keys:write',
    });

  it('refuses a secret rotated with no overlap on the other process once its subscriber is back', async () => {
    const job = await apiClient(one, ['keys:write'], 'Leaky job');
    expect((await token(two, job)).status).toBe(200);

    const subscribers = async () =>
      String(await control.call('CLIENT', 'LIST', 'TYPE', 'pubsub'))
        .split('\n')
        .filter(Boolean).length;
    const before = await subscribers();
    expect(before, 'both processes listen').toBeGreaterThanOrEqual(2);
    // The subscribers lose their connections, and Redis takes no new one for a while (it has
    // reached maxclients): what is published meanwhile is lost to them.
    const connected = Number(
      /connected_clients:(\d+)/.exec(String(await control.call('INFO', 'clients')))![1],
    );
    await control.call('CONFIG', 'SET', 'maxclients', String(connected - before));
    let rotated;
    try {
      await control.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
      rotated = await apiCall(one, admin, 'POST', `/clients/${job.clientId}/rotate-secret`, {
        body: { overlapSeconds: 0 },
      });
    } finally {
      await control.call('CONFIG', 'SET', 'maxclients', '10000');
    }
    expect(rotated.status).toBe(200);
    // Redis takes connections again: wait until both subscribers are back.
    for (let i = 0; i < 50 && (await subscribers()) < before; i++)
      await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await subscribers(), 'the subscribers reconnected').toBe(before);

    expect((await token(one, job)).status).toBe(401);
    expect((await token(two, job)).status, 'the leaked secret on the other process').toBe(401);
  });
});
