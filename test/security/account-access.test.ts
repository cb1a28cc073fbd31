import knexFactory, { type Knex } from 'knex';
import type * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, hiddenInput } from '../support/browser.ts';
import { codeAt, Flow, recoveryCodes, setupKey } from '../support/flow.ts';
import { relyingParty, REDIRECT_URI } from '../support/relying-party.ts';
import { startTestServer, storageEnv, type TestServer } from '../support/server.ts';

// The attack an independent review replayed: with the password alone, stop at the two-step
// page and use the account pages to take the account over. And "sudo mode": a full sign-in
// that is not recent is asked again before a sensitive change.

const OWNER = { email: 'owner@example.test', password: 'the owner has a long passphrase' };
const NO_FACTOR = { email: 'plain@example.test', password: 'plain user passphrase 2026' };
const SENSITIVE_POSTS = [
  '/account/mfa/totp/remove',
  '/account/mfa/recovery',
  '/account/mfa/passkeys/new',
  '/account/mfa/passkeys/remove',
  '/account/mfa/totp',
  '/account/email',
  '/account/password',
  '/account/profile',
];

async function setup(env: Record<string, string> = {}) {
  const server = await startTestServer({ ...(await storageEnv('postgres+redis')), ...env });
  const client = await server.clients.create({ name: 'Access app', redirectUris: [REDIRECT_URI] });
  const rp = await relyingParty(server.url, client.clientId, client.clientSecret);
  const db = knexFactory({ client: 'pg', connection: server.env.DATABASE_URL });
  return { server, rp, db };
}

/** Where a response sends the browser, relative to the server. */
const location = (res: Response, server: TestServer) =>
  new URL(res.headers.get('location') ?? '', server.url);

describe('account pages serve only a complete sign-in', () => {
  let server: TestServer;
  let rp: oidc.Configuration;
  let db: Knex;
  let codes: string[] = [];

  beforeAll(async () => {
    ({ server, rp, db } = await setup());
    await server.users.create({ ...OWNER, emailVerified: true });
    await server.users.create({ ...NO_FACTOR, emailVerified: true });
    const flow = new Flow(server, rp, OWNER);
    await flow.signIn();
    ({ codes } = await flow.enrolAuthenticator());
  });
  afterAll(async () => {
    await db?.destroy();
    await server?.cleanup();
  });

  it('with the password alone: no account page, and every change is refused', async () => {
    const attacker = new Flow(server, rp, OWNER);
    await attacker.start();
    await attacker.login();
    expect(attacker.html).toContain('Enter the 6-digit code'); // stopped at the second factor

    for (const path of [
      '/account/mfa',
      '/account/password',
      '/account/email',
      '/account/profile',
    ]) {
      const res = await attacker.browser.get(`${server.url}${path}`);
      expect(res.status, path).toBe(303);
      expect(location(res, server).pathname, path).toBe('/auth');
    }
    // Following the redirect resumes the sign-in: the second factor is still owed.
    await attacker.get('/account/mfa');
    expect(attacker.html).toContain('Enter the 6-digit code');
    expect(attacker.html).not.toContain('Remove');

    const user = (await server.users.findByEmail(OWNER.email))!;
    for (const path of SENSITIVE_POSTS) {
      const res = await attacker.browser.post(`${server.url}${path}`, {
        csrf: 'x',
        password: OWNER.password,
        current: OWNER.password,
        email: 'attacker@example.test',
        confirm: 'attacker chosen password 99',
        name: 'Attacker',
      });
      expect(res.status, path).toBe(303);
      expect(location(res, server).pathname, path).toBe('/auth');
    }
    const after = (await server.users.findByEmail(OWNER.email))!;
    expect(after.email).toBe(OWNER.email);
    expect(after.name).toBe(user.name);
    expect(after.password_hash).toBe(user.password_hash);
    expect((await db('totp_factors').where({ user_id: user.id }).first()).confirmed_at).not.toBe(
      null,
    );
    expect(
      await db('recovery_codes').where({ user_id: user.id }).whereNull('used_at'),
    ).toHaveLength(10);
  });

  it('with the second factor too: the account page opens, after the sign-in it resumes', async () => {
    const owner = new Flow(server, rp, OWNER);
    await owner.get('/account/mfa');
    expect(owner.html).toContain('name="password"'); // not signed in: the login page
    await owner.login();
    await owner.get(`${owner.url.pathname}?method=recovery`);
    await owner.submit('/mfa/recovery', { code: codes[0]! });
    expect(owner.url.pathname).toBe('/account/mfa');
    expect(owner.status).toBe(200);
    expect(owner.html).toContain('Two-step verification');
  });

  it('sends a signed-out browser to sign in, and back to the page it asked for', async () => {
    const res = await new Browser().get(`${server.url}/account/password`);
    expect(res.status).toBe(303);
    const to = location(res, server);
    expect(to.pathname).toBe('/auth');
    expect(to.searchParams.get('client_id')).toBe('latchkey-account');

    const flow = new Flow(server, rp, NO_FACTOR);
    await flow.get('/account/password');
    await flow.login();
    expect(flow.url.pathname).toBe('/account/password');
    expect(flow.html).toContain('Change your password');
  });

  it('refuses a callback whose return address was not signed by us', async () => {
    const state = `${Buffer.from('/account/password').toString('base64url')}.forged`;
    const res = await new Browser().get(`${server.url}/account/callback?code=x&state=${state}`);
    expect(res.status).toBe(400);
    expect(res.headers.get('location')).toBeNull();
  });
});

describe('a sensitive change needs a recent full sign-in', () => {
  let server: TestServer;
  let rp: oidc.Configuration;
  let db: Knex;

  beforeAll(async () => {
    ({ server, rp, db } = await setup({ REAUTH_MAX_AGE: '3s' }));
    await server.users.create({ ...OWNER, emailVerified: true });
  });
  afterAll(async () => {
    await db?.destroy();
    await server?.cleanup();
  });

  it('asks an older session to sign in again, password and second factor, then serves the page', async () => {
    const flow = new Flow(server, rp, OWNER);
    await flow.signIn();
    const { codes } = await flow.enrolAuthenticator();
    // Its first code was shown in this session: it is not asked for again at once.
    await flow.get('/account/mfa');
    expect(flow.url.pathname).toBe('/account/mfa');
    expect(flow.html).toContain('Two-step verification');

    // loginTs is in whole seconds: wait past the window by more than one.
    await new Promise((resolve) => setTimeout(resolve, 4500));
    const res = await flow.browser.get(`${server.url}/account/email`);
    expect(res.status).toBe(303);
    const to = location(res, server);
    expect(to.searchParams.get('prompt')).toBe('login');
    expect(to.searchParams.get('login_hint')).toBe(OWNER.email);

    await flow.get('/account/email');
    expect(flow.html).toContain('name="password"');
    await flow.login();
    expect(flow.html).not.toContain('Change your email address'); // the second factor first
    await flow.get(`${flow.url.pathname}?method=recovery`);
    await flow.submit('/mfa/recovery', { code: codes[0]! });
    expect(flow.url.pathname).toBe('/account/email');
    expect(flow.html).toContain('Change your email address');
  });
});

describe('authenticator app setup keys belong to one session', () => {
  let server: TestServer;
  let rp: oidc.Configuration;
  let db: Knex;

  beforeAll(async () => {
    ({ server, rp, db } = await setup());
    await server.users.create({ ...NO_FACTOR, emailVerified: true });
  });
  afterAll(async () => {
    await db?.destroy();
    await server?.cleanup();
  });

  it('shows each session its own key; a code of one key cannot finish the other enrolment', async () => {
    const first = new Flow(server, rp, NO_FACTOR);
    const second = new Flow(server, rp, NO_FACTOR);
    for (const flow of [first, second]) {
      await flow.start();
      await flow.login();
      await flow.tokens();
      await flow.get('/account/mfa/totp');
    }
    const firstKey = setupKey(first.html);
    const secondKey = setupKey(second.html);
    expect(firstKey).not.toBe(secondKey);
    // A reload shows the session the same key.
    await first.get('/account/mfa/totp');
    expect(setupKey(first.html)).toBe(firstKey);

    await second.submit('/account/mfa/totp', {
      password: NO_FACTOR.password,
      code: await codeAt(firstKey),
    });
    expect(second.status).toBe(400);
    expect(second.html).toContain('That code is not right');
    const user = (await server.users.findByEmail(NO_FACTOR.email))!;
    expect(
      await db('totp_factors').where({ user_id: user.id }).whereNotNull('confirmed_at'),
    ).toEqual([]);

    await second.submit('/account/mfa/totp', {
      password: NO_FACTOR.password,
      code: await codeAt(secondKey),
    });
    expect(recoveryCodes(second.html)).toHaveLength(10);
  });
});

describe('the current password on account pages', () => {
  let server: TestServer;
  let rp: oidc.Configuration;
  let db: Knex;

  beforeAll(async () => {
    ({ server, rp, db } = await setup());
    await server.users.create({ ...NO_FACTOR, emailVerified: true });
  });
  afterAll(async () => {
    await db?.destroy();
    await server?.cleanup();
  });

  it('takes no more guesses than a sign-in does', async () => {
    const flow = new Flow(server, rp, NO_FACTOR);
    await flow.signIn();
    await flow.get('/account/password');
    const csrf = hiddenInput(flow.html, 'csrf');
    const url = `${server.url}/account/password`;
    const fresh = 'a brand new passphrase 4 me';
    const statuses: number[] = [];
    for (let i = 0; i < 15; i++)
      statuses.push(
        (
          await flow.browser.post(url, {
            csrf,
            current: `guess number ${i}`,
            password: fresh,
            confirm: fresh,
          })
        ).status,
      );
    // This browser's own limit (RATE_LIMIT_LOGIN_DEVICE, 10); past it, it is a stranger whose
    // failures count toward the account's lock (LOCKOUT_THRESHOLD, 5), as at sign-in.
    expect(statuses).toEqual(Array(15).fill(400));
    const user = (await server.users.findByEmail(NO_FACTOR.email))!;
    expect(new Date(user.locked_until!).getTime()).toBeGreaterThan(Date.now());
    const right = await flow.browser.post(url, {
      csrf,
      current: NO_FACTOR.password,
      password: fresh,
      confirm: fresh,
    });
    expect(right.status).toBe(400);
    expect(await right.text()).toContain('Your current password is not right.');
    expect((await server.users.findByEmail(NO_FACTOR.email))!.password_hash).toBe(
      user.password_hash,
    );
  });

  it('mails at most five email-change links an hour per account', async () => {
    const mover = { email: 'mover@example.test', password: 'mover has a passphrase too' };
    await server.users.create({ ...mover, emailVerified: true });
    const flow = new Flow(server, rp, mover);
    await flow.signIn();
    await flow.get('/account/email');
    const csrf = hiddenInput(flow.html, 'csrf');
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++)
      statuses.push(
        (
          await flow.browser.post(`${server.url}/account/email`, {
            csrf,
            current: mover.password,
            email: `elsewhere.${i}@example.test`,
          })
        ).status,
      );
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
  });
});
