import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiCall, apiClient, documentChecker, type Json } from '../support/admin-api.ts';
import { Browser } from '../support/browser.ts';
import { Flow } from '../support/flow.ts';
import { recipients, smtpEnv } from '../support/mailbox.ts';
import { REDIRECT_URI, relyingParty, signIn, tryLogin } from '../support/relying-party.ts';
import { startTestServer, storageEnv, STORAGES, type TestServer } from '../support/server.ts';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp.ts';

const AGENTS = {
  laptop:
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
  desktop: 'Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0',
};
const PASSWORD = 'a long enough password for these tests';
const WRONG = 'not the password of this account at all';
const NO_SUCH_USER = '00000000-0000-4000-8000-000000000000';

describe.each(STORAGES)('admin API: user actions, sessions, grants, export (%s)', (storage) => {
  let server: TestServer;
  let smtp: TestSmtpServer;
  let rp: oidc.Configuration;
  let appId: string;
  let check: ReturnType<typeof documentChecker>;
  let job: Awaited<ReturnType<typeof apiClient>>;
  let token: string;
  let people = 0;

  beforeAll(async () => {
    smtp = await startSmtpServer();
    server = await startTestServer({
      ...(await storageEnv(storage)),
      ...smtpEnv(smtp),
      RATE_LIMIT_ADMIN_API: 'off',
      LOCKOUT_THRESHOLD: '3',
    });
    const { body: document } = await apiCall(server, undefined, 'GET', '/openapi.json');
    check = documentChecker(document);
    const app = await server.clients.create({ name: 'Notes app', redirectUris: [REDIRECT_URI] });
    appId = app.clientId;
    rp = await relyingParty(server.url, app.clientId, app.clientSecret);
    job = await apiClient(server, ['users:read', 'users:write', 'sessions:read', 'sessions:write']);
    token = await job.token();
  });
  afterAll(async () => {
    await server?.cleanup();
    await smtp?.stop();
  });

  /** A new verified user of its own (each test changes its user). */
  async function person() {
    const email = `person-${++people}-${storage.replace('+', '-')}@example.test`;
    const user = await server.users.create({ email, password: PASSWORD, emailVerified: true });
    return { id: user.id, email, password: PASSWORD };
  }

  /** Calls the API with the job's token and checks the answer against the document. */
  async function call(method: string, template: string, id: string, extra = '') {
    const path = template.replace('{id}', id).replace(/\{\w+\}/, extra);
    const answer = await apiCall(server, token, method, path);
    check(method, template, answer);
    return answer;
  }

  /** The next refresh token (they rotate), or the OAuth error when it is refused. */
  async function refresh(refreshToken: string): Promise<string> {
    try {
      return (await oidc.refreshTokenGrant(rp, refreshToken)).refresh_token!;
    } catch (err) {
      return `refused: ${(err as { error?: string }).error}`;
    }
  }

  const accountPage = async (browser: Browser) =>
    (await browser.get(`${server.url}/account`)).status;

  const audited = (type: string, subject: string) =>
    server
      .db('audit_events')
      .where({ type, subject, actor_type: 'client', actor_id: job.clientId });

  it('lists two browser sessions by uid; ending one signs that browser out and fails its refresh token', async () => {
    const user = await person();
    const laptop = new Browser({ userAgent: AGENTS.laptop });
    const desktop = new Browser({ userAgent: AGENTS.desktop });
    const onLaptop = await signIn(rp, laptop, server.url, user);
    const onDesktop = await signIn(rp, desktop, server.url, user);

    const listed = await call('GET', '/users/{id}/sessions', user.id);
    expect(listed.status).toBe(200);
    expect(listed.body.items).toHaveLength(2);
    const firefox = listed.body.items.find((s: Json) => s.device === 'Firefox on Linux');
    expect(firefox).toMatchObject({ ip: '127.0.0.1' });
    expect(Date.parse(firefox.signedInAt)).toBeGreaterThan(Date.now() - 60_000);
    expect(Date.parse(firefox.lastActiveAt)).toBeGreaterThan(Date.now() - 60_000);
    // The ids are the sessions' uids, never their ids: those are the cookies' values.
    const stored = await server.db('oidc_payloads').where({ model: 'Session' }).select('id');
    const cookies = [laptop, desktop].map(
      (b) =>
        (b as unknown as { cookies: Map<string, { value: string }> }).cookies.get('_session|/')!
          .value,
    );
    for (const secret of [...cookies, ...stored.map((r) => r.id)])
      expect(JSON.stringify(listed.body)).not.toContain(secret);

    const ended = await call('DELETE', '/users/{id}/sessions/{sessionId}', user.id, firefox.id);
    expect(ended.status).toBe(200);
    expect(ended.body).toEqual({ ended: 1, grantsRevoked: 1 });
    expect(await accountPage(desktop)).toBe(303);
    expect(await refresh(onDesktop.refresh_token!)).toBe('refused: invalid_grant');
    expect(await accountPage(laptop)).toBe(200);
    const laptopToken = await refresh(onLaptop.refresh_token!);
    expect(laptopToken).not.toMatch(/^refused/);
    expect(await audited('session_ended', user.id)).toHaveLength(1);

    const again = await call('DELETE', '/users/{id}/sessions/{sessionId}', user.id, firefox.id);
    expect(again.status).toBe(404);
    expect((await call('GET', '/users/{id}/sessions', user.id)).body.items).toHaveLength(1);

    const all = await call('DELETE', '/users/{id}/sessions', user.id);
    expect(all.status).toBe(200);
    expect(all.body).toEqual({ ended: 1, grantsRevoked: 1 });
    expect(await accountPage(laptop)).toBe(303);
    expect(await refresh(laptopToken)).toBe('refused: invalid_grant');
    expect((await call('GET', '/users/{id}/sessions', user.id)).body.items).toEqual([]);
    expect(await audited('sessions_ended', user.id)).toHaveLength(1);
  });

  it("lists a user's grants per app; revoking one fails its refresh token with invalid_grant", async () => {
    const user = await person();
    const tokens = await signIn(rp, new Browser(), server.url, user);
    const listed = await call('GET', '/users/{id}/grants', user.id);
    expect(listed.status).toBe(200);
    expect(listed.body.items).toHaveLength(1);
    const [app] = listed.body.items;
    expect(app).toMatchObject({ clientId: appId, name: 'Notes app', offline: true });
    expect(app.scopes).toEqual(expect.arrayContaining(['openid', 'offline_access']));
    expect(Date.parse(app.firstUse)).toBeLessThanOrEqual(Date.parse(app.lastUse));

    const removed = await call('DELETE', '/users/{id}/grants/{clientId}', user.id, appId);
    expect(removed.status).toBe(200);
    expect(removed.body).toEqual({ consentWithdrawn: true, grantsRevoked: 1 });
    expect(await refresh(tokens.refresh_token!)).toBe('refused: invalid_grant');
    expect((await call('GET', '/users/{id}/grants', user.id)).body.items).toEqual([]);
    expect(await audited('consent_withdrawn', user.id)).toHaveLength(1);
    const again = await call('DELETE', '/users/{id}/grants/{clientId}', user.id, appId);
    expect(again.status).toBe(404);
  });

  it('unlocks an account locked by failed sign-ins: the right password works again', async () => {
    const user = await person();
    for (let i = 0; i < 3; i++) await tryLogin(rp, server.url, user.email, WRONG);
    expect((await tryLogin(rp, server.url, user.email, user.password)).status).toBe(400);

    const unlocked = await call('POST', '/users/{id}/unlock', user.id);
    expect(unlocked.status).toBe(200);
    expect(unlocked.body).toEqual({ wasLocked: true, ownerLockLifted: false });
    const tokens = await signIn(rp, new Browser(), server.url, user);
    expect(tokens.access_token).toBeTruthy();
    expect(await audited('account_unlocked', user.id)).toHaveLength(1);
  });

  it('resets the second factors: the next sign-in asks no code, and the owner is told by email', async () => {
    const user = await person();
    const flow = new Flow(server, rp, user);
    await flow.signIn();
    const { secret } = await flow.enrolAuthenticator();
    const asked = new Flow(server, rp, user);
    await asked.start();
    await asked.login();
    expect(asked.url.pathname).toMatch(/^\/interaction\//);
    expect(asked.html).toContain('/mfa/totp');
    expect(secret).toBeTruthy();

    const mails = smtp.messages.length;
    const reset = await call('POST', '/users/{id}/reset-mfa', user.id);
    expect(reset.status).toBe(200);
    expect(reset.body).toEqual({ authenticatorApp: true, recoveryCodes: 10, passkeys: 0 });
    const next = new Flow(server, rp, user);
    await next.start();
    await next.login();
    expect((await next.tokens()).access_token).toBeTruthy();
    const notice = await smtp.waitForMessage(
      (m) =>
        smtp.messages.indexOf(m) >= mails &&
        recipients(m).includes(user.email) &&
        /removed every second factor/.test(m.text ?? ''),
      5000,
    );
    expect(notice.subject).toMatch(/two-step verification/i);
    expect(await audited('mfa_reset', user.id)).toHaveLength(1);
  });

  it('forces a password reset: the old password and refresh tokens stop working, a link is emailed', async () => {
    const user = await person();
    const tokens = await signIn(rp, new Browser(), server.url, user);
    const mails = smtp.messages.length;
    const forced = await call('POST', '/users/{id}/force-password-reset', user.id);
    expect(forced.status).toBe(200);
    expect(forced.body).toEqual({ emailed: true });
    expect(await refresh(tokens.refresh_token!)).toBe('refused: invalid_grant');
    expect((await tryLogin(rp, server.url, user.email, user.password)).status).toBe(400);
    await smtp.waitForMessage(
      (m) =>
        smtp.messages.indexOf(m) >= mails &&
        recipients(m).includes(user.email) &&
        /\/reset/.test(m.text ?? ''),
      5000,
    );
    expect(await audited('password_reset_forced', user.id)).toHaveLength(1);

    await server
      .db('users')
      .where({ id: user.id })
      .update({ source: 'ldap', directory_id: 'cn=someone' });
    const directory = await call('POST', '/users/{id}/force-password-reset', user.id);
    expect(directory.status).toBe(409);
  });

  it("exports a user's data as the account center's download, as an attachment", async () => {
    const user = await person();
    await signIn(rp, new Browser(), server.url, user);
    const exported = await call('GET', '/users/{id}/export', user.id);
    expect(exported.status).toBe(200);
    expect(exported.headers.get('content-disposition')).toMatch(
      /^attachment; filename="account-data-\d{4}-\d{2}-\d{2}\.json"$/,
    );
    expect(exported.body.format).toBe('latchkey-account-export/1');
    expect(exported.body.profile).toMatchObject({ id: user.id, email: user.email });
    expect(exported.body.sessions).toHaveLength(1);
    expect(JSON.stringify(exported.body)).not.toMatch(/argon2|password_hash/);
    expect(await audited('data_exported', user.id)).toHaveLength(1);
  });

  it('answers 404 problem+json for a user that does not exist, on every route', async () => {
    const routes: [string, string][] = [
      ['POST', '/users/{id}/unlock'],
      ['POST', '/users/{id}/reset-mfa'],
      ['POST', '/users/{id}/force-password-reset'],
      ['GET', '/users/{id}/sessions'],
      ['DELETE', '/users/{id}/sessions'],
      ['DELETE', '/users/{id}/sessions/{sessionId}'],
      ['GET', '/users/{id}/grants'],
      ['DELETE', '/users/{id}/grants/{clientId}'],
      ['GET', '/users/{id}/export'],
    ];
    for (const [method, template] of routes) {
      const answer = await call(method, template, NO_SUCH_USER, 'abc');
      expect(answer.status, `${method} ${template}`).toBe(404);
      expect(answer.body.type).toBe('urn:latchkey:problem:not-found');
    }
    const user = await person();
    const odd = await call('DELETE', '/users/{id}/sessions/{sessionId}', user.id, 'x'.repeat(300));
    expect(odd.status).toBe(404);
  });
});
