import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_SCOPES } from '../../server/admin-api/scopes.ts';
import { apiAudience, apiCall, apiClient } from '../support/admin-api.ts';
import { tokenRequest } from '../support/relying-party.ts';
import { startTestServer, storageEnv, type TestServer } from '../support/server.ts';

// A scope allows exactly its routes: holding one must not let a caller obtain the others
// through the API itself (by registering or changing clients, or by making admins).

describe('admin API scopes cannot be widened through the API', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({
      ...(await storageEnv('embedded')),
      RATE_LIMIT_ADMIN_API: 'off',
    });
  });
  afterAll(async () => {
    await server?.cleanup();
  });

  it('refuses a clients:write caller registering a client with scopes it does not hold', async () => {
    const job = await apiClient(server, ['clients:write']);
    const res = await apiCall(server, await job.token(), 'POST', '/clients', {
      body: {
        name: 'Escalation',
        grantTypes: ['client_credentials'],
        apiScopes: [...ADMIN_SCOPES],
      },
    });
    // Whatever it answered, no client may come out of it able to read users.
    let usersRead = 0;
    if (res.body.clientSecret) {
      const minted = await tokenRequest(
        server.url,
        { clientId: res.body.clientId, clientSecret: res.body.clientSecret },
        { grant_type: 'client_credentials', resource: apiAudience(server), scope: 'users:read' },
      );
      usersRead = (await apiCall(server, String(minted.body.access_token), 'GET', '/users')).status;
    }
    expect(usersRead, 'the registered client reads users').not.toBe(200);
    expect(res.status).toBe(403);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
  });

  it('refuses a clients:write caller giving itself scopes it does not hold', async () => {
    const job = await apiClient(server, ['clients:read', 'clients:write']);
    const token = await job.token();
    const read = await apiCall(server, token, 'GET', `/clients/${job.clientId}`);
    expect(read.status).toBe(200);
    const res = await apiCall(server, token, 'PATCH', `/clients/${job.clientId}`, {
      body: { apiScopes: [...ADMIN_SCOPES] },
      headers: { 'if-match': read.headers.get('etag')! },
    });
    expect(res.status).toBe(403);
    const after = await apiCall(server, token, 'GET', `/clients/${job.clientId}`);
    expect(after.body.apiScopes).toEqual(['clients:read', 'clients:write']);
  });

  it('refuses a clients:write caller taking the secret of a client with scopes it does not hold', async () => {
    const strong = await apiClient(server, ['users:read', 'users:write'], 'Provisioning job');
    const job = await apiClient(server, ['clients:write']);
    const res = await apiCall(
      server,
      await job.token(),
      'POST',
      `/clients/${strong.clientId}/rotate-secret`,
      {
        body: { overlapSeconds: 0 },
      },
    );
    let usersRead = 0;
    if (res.body.clientSecret) {
      const minted = await tokenRequest(
        server.url,
        { clientId: strong.clientId, clientSecret: res.body.clientSecret },
        { grant_type: 'client_credentials', resource: apiAudience(server), scope: 'users:read' },
      );
      usersRead = (await apiCall(server, String(minted.body.access_token), 'GET', '/users')).status;
    }
    expect(usersRead, "with the other client's new secret, it reads users").not.toBe(200);
    expect(res.status).toBe(403);
  });

  it('refuses a users:write machine client making a user an admin', async () => {
    // An admin (with a second factor) gets every scope the admin console client allows: the
    // role is worth more than users:write itself.
    const job = await apiClient(server, ['users:write']);
    const token = await job.token();
    const created = await apiCall(server, token, 'POST', '/users', {
      body: {
        email: 'sleeper@example.test',
        password: 'correct horse battery staple 42',
        roles: ['admin'],
        emailVerified: true,
      },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(403);
    expect(created.headers.get('content-type')).toContain('application/problem+json');
    const user = await server.users.findByEmail('sleeper@example.test');
    expect(user?.roles ?? []).not.toContain('admin');
  });
});
