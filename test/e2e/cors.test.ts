import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, storageEnv, type TestServer } from '../support/server.ts';

const SPA = 'http://spa.example.test';

describe('per-client CORS on the token and userinfo endpoints', () => {
  let server: TestServer;
  let clientId: string;
  beforeAll(async () => {
    server = await startTestServer(await storageEnv('embedded'));
    ({ clientId } = await server.clients.create({
      name: 'SPA',
      public: true,
      redirectUris: [`${SPA}/cb`],
      corsOrigins: [SPA],
    }));
  });
  afterAll(() => server?.cleanup());

  const tokenRequest = (origin: string) =>
    fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { origin, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code: 'nope',
        client_id: clientId,
        redirect_uri: `${SPA}/cb`,
        code_verifier: 'v'.repeat(43),
      }),
    });

  it("allows the client's registered origin", async () => {
    const res = await tokenRequest(SPA);
    expect(res.status).toBe(400); // the code is bogus; what matters is the CORS answer
    expect(res.headers.get('access-control-allow-origin')).toBe(SPA);
  });

  it('refuses any other origin', async () => {
    const res = await tokenRequest('http://evil.example.test');
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('answers preflight requests for the token endpoint', async () => {
    const res = await fetch(`${server.url}/token`, {
      method: 'OPTIONS',
      headers: {
        origin: SPA,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type',
      },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-methods')).toContain('POST');
  });
});
