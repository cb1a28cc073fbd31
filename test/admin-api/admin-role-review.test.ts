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
import { Flow } from '../support/flow.ts';
import { recipients, smtpEnv } from '../support/mailbox.ts';
import { startTestServer, storageEnv, type TestServer } from '../support/server.ts';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp.ts';

// Review of the admin API fixes (24d299d): the admin role is guarded on `roles`, but other
// routes reach the same end; the second-factor check and the refusal limit have gaps.

describe('admin API: the admin role and refusals, other paths (review)', () => {
  let server: TestServer;
  let smtp: TestSmtpServer;
  let rp: Awaited<ReturnType<typeof adminConsole>>['rp'];
  let params: { scope: string; resource: string };

  beforeAll(async () => {
    smtp = await startSmtpServer();
    server = await startTestServer({
      ...(await storageEnv('embedded')),
      ...smtpEnv(smtp),
      RATE_LIMIT_ADMIN_API: '6/1m',
    });
    ({ rp, params } = await adminConsole(server, ['users:read', 'users:write']));
  });
  afterAll(async () => {
    await server?.cleanup();
    await smtp?.stop();
  });

  const person = (email: string, roles: string[]) => personOf(server, email, roles);

  /** A helpdesk job of its own (the rate limit counts per client): users:read and users:write. */
  const helpdeskToken = async () =>
    (await apiClient(server, ['users:read', 'users:write'], 'Helpdesk')).token();

  it('refuses a users:read+write caller taking over an admin account by moving its address, then resetting its factors and password', async () => {
    // The role itself is guarded, but the account holding it is not: with the address moved
    // (vouched), the factors reset and a reset forced, the reset link goes to the caller, who
    // then signs in as the admin, enrols a factor and holds every scope the role opens.
    const boss = await person('the-boss@example.test', ['admin']);
    const helpdesk = await helpdeskToken();
    const attacker = 'helpdesk-intern@evil.test';
    const read = await apiCall(server, helpdesk, 'GET', `/users/${boss.id}`);
    expect(read.status).toBe(200);
    const etag = read.headers.get('etag')!;
    const moved = await apiCall(server, helpdesk, 'PATCH', `/users/${boss.id}`, {
      body: { email: attacker, emailVerified: true },
      headers: { 'if-match': etag },
    });
    const reset = await apiCall(server, helpdesk, 'POST', `/users/${boss.id}/reset-mfa`);
    const forced = await apiCall(
      server,
      helpdesk,
      'POST',
      `/users/${boss.id}/force-password-reset`,
    );
    const toAttacker = smtp.messages.filter(
      (m) => recipients(m).includes(attacker) && /\/reset/.test(m.text ?? ''),
    );
    expect(toAttacker, "the admin's reset link reached the caller's address").toHaveLength(0);
    expect((await server.users.findById(boss.id))!.email).toBe(boss.email);
    expect(moved.status, "moving an admin's address with users:read and users:write alone").toBe(
      403,
    );
    // Whether a reset of an admin's factors or password (to their own address) should also need
    // every scope is a judgement call; taking the account over must not be possible.
    expect([reset.status, forced.status]).toHaveLength(2);
  });

  it('stops a session that signed in with a since-reset factor once a new factor is enrolled', async () => {
    // Someone signed in with the admin's old factor (a stolen phone); the helpdesk resets the
    // factors; the owner enrols a new one in another browser. The old session never proved the
    // new factor, yet its tokens say acr mfa and pass "a second factor the user still has".
    const boss = await person('stolen-phone@example.test', ['admin']);
    // Resetting an admin's factors takes every scope (admin-role.ts guardAdminAccount).
    const helpdesk = await (await apiClient(server, [...ADMIN_SCOPES], 'Head of IT')).token();
    const { flow: thief, tokens: before } = await signInWithSecondFactor(
      server,
      { rp, params },
      boss,
    );
    expect((await apiCall(server, before.access_token, 'GET', '/users?limit=1')).status).toBe(200);

    expect((await apiCall(server, helpdesk, 'POST', `/users/${boss.id}/reset-mfa`)).status).toBe(
      200,
    );
    const owner = new Flow(server, rp, boss);
    await owner.start({ ...params, prompt: 'login' });
    await owner.login();
    await owner.enrolAuthenticator();

    // The reset signed every browser out: the thief's session is asked to sign in again and
    // mints nothing.
    await thief.start(params);
    expect(thief.html, "the thief's session after the reset").toContain('name="password"');
    const old = await apiCall(server, before.access_token, 'GET', '/users?limit=1');
    expect(old.status, 'the token minted before the reset').not.toBe(200);
  });

  it("rate-limits a person's refused calls (no admin role), as it does made-up tokens", async () => {
    // A 403 from the verifier is neither counted per caller (the caller is unknown yet) nor
    // per address (only invalid-token is): every call writes an audit row, without end.
    const user = await person('audit-flooder@example.test', []);
    const { access_token } = await signInWithPasswordOnly(server, { rp, params }, user);
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++)
      statuses.push((await apiCall(server, access_token, 'GET', '/users')).status);
    const rows: Json[] = await server
      .db('audit_events')
      .where({ type: 'admin_api_call', actor_id: user.id });
    expect(statuses, 'RATE_LIMIT_ADMIN_API is 6/1m').toContain(429);
    expect(rows.length, 'audit rows written by one refused person').toBeLessThanOrEqual(7);
  });
});
