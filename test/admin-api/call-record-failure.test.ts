import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiAudience, apiCall, apiClient } from '../support/admin-api.ts';
import { withAuditRefused } from '../support/audit-fault.ts';
import { tokenRequest } from '../support/relying-party.ts';
import { startTestServer, storageEnv, type TestServer } from '../support/server.ts';

// The router records each call (admin_api_call) after its handler has committed the change.
// Should that record fail, the caller must not be told "try again" about a change that was
// made, least of all one whose only copy of a secret is in the answer.

describe('admin API when the record of a call cannot be written', () => {
  let server: TestServer;
  let admin: string;
  beforeAll(async () => {
    server = await startTestServer({
      ...(await storageEnv('postgres+redis')),
      RATE_LIMIT_ADMIN_API: 'off',
    });
    admin = await (await apiClient(server, ['clients:write', 'keys:write'])).token();
  });
  afterAll(async () => {
    await server?.cleanup();
  });

  it('rotates a secret and answers it, or leaves the old secret working', async () => {
    const job = await apiClient(server, ['keys:write'], 'Rotated job');
    const res = await withAuditRefused(server.db, ['admin_api_call'], () =>
      apiCall(server, admin, 'POST', `/clients/${job.clientId}/rotate-secret`, {
        body: { overlapSeconds: 0 },
      }),
    );
    const old = await tokenRequest(server.url, job, {
      grant_type: 'client_credentials',
      resource: apiAudience(server),
      scope: 'keys:write',
    });
    if (res.status === 200) expect(res.body.clientSecret).toBeTypeOf('string');
    else
      expect(old.status, `answered ${res.status}, yet the secret it did not give was set`).toBe(
        200,
      );
  });

  it('registers a client and answers its secret, or registers nothing', async () => {
    const name = 'Half-made client';
    const res = await withAuditRefused(server.db, ['admin_api_call'], () =>
      apiCall(server, admin, 'POST', '/clients', {
        body: { name, grantTypes: ['client_credentials'] },
      }),
    );
    const made = await server.db('clients').whereRaw("metadata->>'client_name' = ?", [name]);
    if (res.status === 201) expect(res.body.clientSecret).toBeTypeOf('string');
    else expect(made, `answered ${res.status}, yet the client exists`).toHaveLength(0);
  });
});
