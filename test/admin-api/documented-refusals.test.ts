import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiCall, apiClient, documentChecker } from '../support/admin-api.ts';
import { startTestServer, storageEnv, type TestServer } from '../support/server.ts';

// What the router answers to a body it cannot take must be in the published document like any
// other answer, so that a client generated from it knows the response.

describe('admin API refusals of a body, as documented', () => {
  let server: TestServer;
  let token: string;
  let check: ReturnType<typeof documentChecker>;
  beforeAll(async () => {
    server = await startTestServer({
      ...(await storageEnv('embedded')),
      RATE_LIMIT_ADMIN_API: 'off',
    });
    check = documentChecker((await apiCall(server, undefined, 'GET', '/openapi.json')).body);
    token = await (await apiClient(server, ['users:write'])).token();
  });
  afterAll(async () => {
    await server?.cleanup();
  });

  it('documents the 415 it answers to a form body', async () => {
    const res = await apiCall(server, token, 'POST', '/users', {
      body: 'email=a%40example.test',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(res.status).toBe(415);
    check('POST', '/users', res);
  });

  it('documents the 413 it answers to a body over the limit', async () => {
    const res = await apiCall(server, token, 'POST', '/users', {
      body: { email: 'big@example.test', invite: true, name: 'x'.repeat(70 * 1024) },
    });
    expect(res.status).toBe(413);
    check('POST', '/users', res);
  });
});
