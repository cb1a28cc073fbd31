import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiAudience, apiCall, apiClient } from '../support/admin-api.ts';
import { tokenRequest } from '../support/relying-party.ts';
import { freePort } from '../support/services.ts';
import { startTestServer, storageEnv, type TestServer } from '../support/server.ts';

// Two processes of one deployment (one issuer, one PostgreSQL and Redis). A change an admin
// makes through one must hold on the other at once where the API says so: a secret rotated
// with overlap 0 ("for a leaked secret"), a client deleted ("its tokens stop working").

describe('admin API client changes seen by another process', () => {
  let one: TestServer;
  let two: TestServer;
  let admin: string;

  beforeAll(async () => {
    const shared = await storageEnv('postgres+redis');
    const port = await freePort();
    const issuer = `http://127.0.0.1:${port}`;
    const env = { ...shared, ISSUER: issuer, RATE_LIMIT_ADMIN_API: 'off' };
    one = await startTestServer({ ...env, PORT: String(port) });
    two = await startTestServer({ ...env, PORT: String(await freePort()) });
    admin = await (await apiClient(one, ['clients:write', 'keys:write'])).token();
  });
  afterAll(async () => {
    await two?.cleanup();
    await one?.cleanup();
  });

  const token = (server: TestServer, client: { clientId: string; clientSecret: string }) =>
    tokenRequest(server.url, client, {
      grant_type: 'client_credentials',
      resource: apiAudience(one),
      scope: 'keys:write',
    });

  it('refuses a secret rotated with no overlap on the other process at once', async () => {
    const job = await apiClient(one, ['keys:write'], 'Leaky job');
    // The other process has just used the client: it holds it in its cache.
    expect((await token(two, job)).status).toBe(200);
    const rotated = await apiCall(one, admin, 'POST', `/clients/${job.clientId}/rotate-secret`, {
      body: { overlapSeconds: 0 },
    });
    expect(rotated.status).toBe(200);
    expect((await token(one, job)).status).toBe(401);
    expect((await token(two, job)).status, 'the leaked secret on the other process').toBe(401);
  });

  it("refuses a deleted client's own token on the other process at once", async () => {
    const job = await apiClient(one, ['keys:write'], 'Doomed job');
    const issued = String((await token(one, job)).body.access_token);
    expect((await apiCall(two, issued, 'GET', '/keys')).status).toBe(200);
    const deleted = await apiCall(one, admin, 'DELETE', `/clients/${job.clientId}`);
    expect(deleted.status).toBe(204);
    expect((await apiCall(one, issued, 'GET', '/keys')).status).toBe(401);
    expect((await apiCall(two, issued, 'GET', '/keys')).status, 'on the other process').toBe(401);
  });
});
