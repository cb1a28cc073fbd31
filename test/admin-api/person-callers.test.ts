import { ADMIN_SCOPES } from '../../server/admin-api/scopes.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  apiCall,
  apiClient,
  type Json,
  adminConsole,
  person as personOf,
  signInWithPasswordOnly,
  signInWithSecondFactor,
} from '../support/admin-api.ts';
import { startTestServer, storageEnv, type TestServer } from '../support/server.ts';

// People calling the admin API with a token from a code flow: what they are refused, that the
// refusal is on the audit trail, and that "signed in with a second factor" stays true.

describe('admin API called by people', () => {
  let server: TestServer;
  let rp: Awaited<ReturnType<typeof adminConsole>>['rp'];
  let helpdesk: string;
  let params: { scope: string; resource: string };

  beforeAll(async () => {
    server = await startTestServer({
      ...(await storageEnv('embedded')),
      RATE_LIMIT_ADMIN_API: '3/1m',
    });
    ({ rp, params } = await adminConsole(server, ['users:read', 'users:write']));
    // Acting on an admin's account takes every scope (admin-role.ts guardAdminAccount).
    helpdesk = await (await apiClient(server, [...ADMIN_SCOPES], 'Helpdesk')).token();
  });
  afterAll(async () => {
    await server?.cleanup();
  });

  const person = (email: string, roles: string[]) => personOf(server, email, roles);

  /** A person's admin API token, signed in with password and authenticator app. */
  async function withSecondFactor(user: { email: string; password: string }) {
    const { flow, tokens } = await signInWithSecondFactor(server, { rp, params }, user);
    return { flow, token: tokens.access_token };
  }

  const callsOf = async (actor: string): Promise<Json[]> =>
    server.db('audit_events').where({ type: 'admin_api_call', actor_id: actor });

  it('audits the call of a person refused for want of the admin role', async () => {
    const user = await person('not-an-admin@example.test', []);
    const { access_token } = await signInWithPasswordOnly(server, { rp, params }, user);
    const refused = await apiCall(server, access_token, 'GET', '/users');
    expect(refused.status).toBe(403);
    expect(await callsOf(user.id), 'an admin_api_call failure row for the person').toHaveLength(1);
  });

  it('audits a call refused for its rate', async () => {
    const job = await apiClient(server, ['users:read'], 'Busy job');
    const token = await job.token();
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await apiCall(server, token, 'GET', '/users'));
    const limited = answers.at(-1)!;
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await callsOf(job.clientId), 'three answered calls and the refused one').toHaveLength(4);
  });

  it('refuses an admin disabling themselves or dropping their own admin role', async () => {
    const boss = await person('self-harm@example.test', ['admin']);
    const { token } = await withSecondFactor(boss);
    const read = await apiCall(server, token, 'GET', `/users/${boss.id}`);
    expect(read.status).toBe(200);
    const ifMatch = { 'if-match': read.headers.get('etag')! };
    const demoted = await apiCall(server, token, 'PATCH', `/users/${boss.id}`, {
      body: { roles: [] },
      headers: ifMatch,
    });
    expect(demoted.status, 'dropping their own admin role').toBe(403);
    const disabled = await apiCall(server, token, 'PATCH', `/users/${boss.id}`, {
      body: { disabled: true },
      headers: ifMatch,
    });
    expect(disabled.status, 'disabling themselves').toBe(403);
    expect((await server.users.findById(boss.id))!.disabled).toBe(false);
  });

  it('stops a person using the API once their second factors were reset', async () => {
    const boss = await person('lost-phone@example.test', ['admin']);
    const { flow, token } = await withSecondFactor(boss);
    expect((await apiCall(server, token, 'GET', '/users?limit=1')).status).toBe(200);
    const reset = await apiCall(server, helpdesk, 'POST', `/users/${boss.id}/reset-mfa`);
    expect(reset.status).toBe(200);
    expect(reset.body.authenticatorApp).toBe(true);

    // The same browser session signs in to the console again, no second factor asked: its
    // token still says acr mfa, though the person has no second factor any more.
    // The reset signed the person out of every browser: asked to sign in again, and the token
    // of the sign-in before the reset no longer works.
    await flow.start(params);
    expect(flow.html).toContain('name="password"');
    expect((await apiCall(server, token, 'GET', '/users?limit=1')).status).toBe(401);
  });
});
