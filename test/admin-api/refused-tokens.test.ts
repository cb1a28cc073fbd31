import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiCall } from '../support/admin-api.ts';
import { startTestServer, storageEnv, type TestServer } from '../support/server.ts';

// The admin API's rate limit is keyed by the caller its token names, so it is checked only once
// the token is verified: a flood of made-up tokens (each a storage look-up, or a signature check)
// is never limited. Refusals from one address must meet the limit too.

describe('admin API calls with tokens it refuses', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({
      ...(await storageEnv('embedded')),
      RATE_LIMIT_ADMIN_API: '3/1m',
    });
  });
  afterAll(async () => {
    await server?.cleanup();
  });

  it('limits them by address: 429 with Retry-After once over the rate', async () => {
    const answers = [];
    for (let i = 0; i < 8; i++)
      answers.push(await apiCall(server, `made-up-token-${i}`, 'GET', '/users'));
    expect(answers.slice(0, 3).map((a) => a.status)).toEqual([401, 401, 401]);
    const last = answers.at(-1)!;
    expect(last.status).toBe(429);
    expect(Number(last.headers.get('retry-after'))).toBeGreaterThan(0);
  });
});
