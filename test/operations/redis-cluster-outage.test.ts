import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshPostgresUrl } from '../support/databases.ts';
import { tokenRequest } from '../support/relying-party.ts';
import { startTestServer, storageEnv, type TestServer } from '../support/server.ts';
import { startRedisCluster } from '../support/services.ts';

const TIMEOUT_MS = 1000;
const ANSWER_BOUND_MS = TIMEOUT_MS * 4;

describe('when the Redis Cluster goes down', () => {
  let cluster: Awaited<ReturnType<typeof startRedisCluster>> | undefined;
  let server: TestServer;
  let job: { clientId: string; clientSecret: string };

  const clientCredentials = () =>
    tokenRequest(
      server.url,
      job,
      { grant_type: 'client_credentials' },
      {
        timeoutMs: ANSWER_BOUND_MS * 2,
      },
    );

  beforeAll(async () => {
    cluster = await startRedisCluster();
    server = await startTestServer({
      ...(await storageEnv('embedded')),
      DATABASE_URL: await freshPostgresUrl(),
      REDIS_CLUSTER_NODES: cluster.nodes.join(','),
      DEPENDENCY_TIMEOUT_MS: String(TIMEOUT_MS),
    });
    const machine = await server.clients.create({
      name: 'Job',
      redirectUris: [],
      grantTypes: ['client_credentials'],
    });
    job = { clientId: machine.clientId, clientSecret: machine.clientSecret! };
  });
  afterAll(async () => {
    await server?.cleanup();
    await cluster?.stop();
  });

  it('a token request answers 503 within the bound, not when the Cluster is back', async () => {
    expect((await clientCredentials()).status).toBe(200);
    await cluster!.stop();
    cluster = undefined;
    const during = await clientCredentials();
    expect(during.status).toBe(503);
    expect(during.ms).toBeLessThan(ANSWER_BOUND_MS);
  });
});
