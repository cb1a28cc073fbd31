import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_SCOPES } from '../../server/admin-api/scopes.ts';
import { apiCall, apiClient } from '../support/admin-api.ts';
import { startTestServer, storageEnv, STORAGES, type TestServer } from '../support/server.ts';

// Input a caller forges past the schemas' shape checks: a cursor is base64url JSON anyone can
// write, and filters are free text. A NUL byte in either must be a 400, never a 500.

const cursorOf = (position: unknown) => Buffer.from(JSON.stringify(position)).toString('base64url');

describe.each(STORAGES)('admin API forged input (%s)', (storage) => {
  let server: TestServer;
  let token: string;
  beforeAll(async () => {
    server = await startTestServer({ ...(await storageEnv(storage)), RATE_LIMIT_ADMIN_API: 'off' });
    token = await (await apiClient(server, [...ADMIN_SCOPES])).token();
  });
  afterAll(async () => {
    await server?.cleanup();
  });

  const cases = [
    { label: 'users cursor with NUL', path: `/users?cursor=${cursorOf({ e: 'a\u0000b' })}` },
    { label: 'clients cursor with NUL', path: `/clients?cursor=${cursorOf({ after: 'a\u0000' })}` },
    { label: 'audit actor with NUL', path: '/audit?actor=a%00b' },
    { label: 'audit subject with NUL', path: '/audit?subject=a%00b' },
    { label: 'audit export actor with NUL', path: '/audit/export?actor=a%00b' },
  ];

  it.each(cases)('answers a $label with a 400 problem, not a 500', async ({ path }) => {
    const res = await apiCall(server, token, 'GET', path);
    expect(res.status, JSON.stringify(res.body)).toBe(400);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
  });
});
