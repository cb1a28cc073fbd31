// The token endpoints on every server: warmed up, then each point (connections × round) measured
// on each server in turn, the order rotated from one endpoint and point to the next.
import { basicAuth, hammer, opaqueClientCredentials, type Endpoint } from './load.ts';
import { withPgActivity } from './pg-activity.ts';
import { INTROSPECTION, JWT, OPAQUE, TOKEN_POINTS, TOKEN_WARMUP, type Results } from './plan.ts';
import { fmt } from './format.ts';
import { rotated, type Note, type Server } from './servers.ts';
import { API } from './target.ts';

export async function benchTokenEndpoints(
  servers: Server[],
  results: Results,
  note: Note,
): Promise<void> {
  const endpoints = new Map(servers.map((server) => [server, tokenEndpoints(server)]));
  const names = [OPAQUE, JWT, INTROSPECTION];
  await withPgActivity(servers, 'token endpoints', 'request', results, async (onPostgres) => {
    let onPostgresCount = 0;
    for (const server of servers)
      for (const endpoint of Object.values(endpoints.get(server)!)) {
        const { count } = await hammer(await endpoint(), 10, TOKEN_WARMUP);
        if (server === onPostgres) onPostgresCount += count;
      }
    let turn = 0;
    for (const { connections, requests, rounds } of TOKEN_POINTS)
      for (let round = 0; round < rounds; round++)
        for (const name of names)
          for (const server of rotated(servers, turn++)) {
            const endpoint = endpoints.get(server)![name];
            if (!endpoint) continue;
            const measurement = await hammer(await endpoint(), connections, requests, server.cpuMs);
            server.assertAlive();
            results.endpoints.push({ server: server.name, name, round, measurement });
            if (server === onPostgres) onPostgresCount += measurement.count;
            note(
              `${server.name} ${name}, ${connections} conns${rounds > 1 ? `, round ${round + 1}` : ''}: ${fmt(measurement.perSecond)}/s`,
            );
          }
    return onPostgresCount;
  });
}

/**
 * client_credentials (opaque; JWT on Latchkey, whose API has JWT tokens) and introspection of a
 * token issued just before each run: the bare in-memory adapter keeps only the last thousand or
 * so entries (an LRU), and a client_credentials run issues thousands.
 */
function tokenEndpoints(server: Server): Record<string, () => Promise<Endpoint>> {
  const token = `${server.url}/token`;
  const headers = {
    'content-type': 'application/x-www-form-urlencoded',
    authorization: basicAuth(server.service),
  };
  const accessToken = (body: string) =>
    (JSON.parse(body) as { access_token?: string }).access_token;
  const endpoints: Record<string, () => Promise<Endpoint>> = {
    [OPAQUE]: async () => opaqueClientCredentials(server.url, server.service),
    [INTROSPECTION]: async () => {
      const issued = await fetch(token, {
        method: 'POST',
        headers,
        body: 'grant_type=client_credentials',
      });
      const introspected = accessToken(await issued.text());
      if (!introspected) throw new Error(`could not issue a token to introspect: ${issued.status}`);
      return {
        url: `${token}/introspection`,
        headers,
        body: `token=${introspected}`,
        verify: (body) => body.includes('"active":true'),
      };
    },
  };
  if (server.storage) {
    const jwtRequest = new URLSearchParams({
      grant_type: 'client_credentials',
      resource: API,
      scope: 'read',
    });
    endpoints[JWT] = async () => ({
      url: token,
      headers,
      body: jwtRequest.toString(),
      verify: (body) => accessToken(body)?.split('.').length === 3,
    });
  }
  return endpoints;
}
