import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, formAction, hiddenInput } from '../support/browser.ts';
import { REDIRECT_URI } from '../support/relying-party.ts';
import { STORAGES, startTestServer, storageEnv, type TestServer } from '../support/server.ts';

const USER = { email: 'eve@example.test', password: 'a long enough password' };
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const TWO_MB = 2 * 1024 * 1024;
const BOGUS_CODE = `grant_type=authorization_code&code=bogus&redirect_uri=${REDIRECT_URI}&code_verifier=${'v'.repeat(43)}`;
const PLAIN = `response_type=code&code_challenge=${'a'.repeat(43)}&code_challenge_method=plain`;

const basic = (id: string, secret: string) =>
  `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

/** Every answer, good or bad, names its request id. */
function withRequestId(res: Response): Response {
  expect(res.headers.get('x-request-id')).toMatch(/^[\w.-]{1,128}$/);
  return res;
}

async function send(url: string | URL, init: RequestInit = {}): Promise<Response> {
  return withRequestId(await fetch(url, { redirect: 'manual', ...init }));
}

async function expectOAuthError(res: Response, status: number, error: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  const body = (await res.json()) as { error: string; error_description?: string };
  expect(body.error).toBe(error);
  return body;
}

/** An HTML page without a stack trace or exception text in it; returns the page. */
async function expectCleanPage(res: Response, status: number): Promise<string> {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^text\/html/);
  const html = await res.text();
  expect(html).not.toMatch(/^\s*at .+:\d+:\d+\)?$/m);
  expect(html).not.toMatch(/node_modules|\.ts:\d+|\.js:\d+/);
  expect(html).not.toMatch(/\b\w*Error: (?!<code>)/); // the page's "Error: <code>x</code>" is ours
  return html;
}

describe.each(STORAGES)('bad input on %s storage: spec errors, never a 500', (storage) => {
  let server: TestServer;
  let web: { clientId: string; clientSecret: string };
  let spa: string;
  let auth: string;

  beforeAll(async () => {
    server = await startTestServer(await storageEnv(storage));
    await server.users.create({ ...USER, emailVerified: true });
    const created = await server.clients.create({ name: 'Web', redirectUris: [REDIRECT_URI] });
    web = { clientId: created.clientId, clientSecret: created.clientSecret! };
    auth = basic(web.clientId, web.clientSecret);
    spa = (await server.clients.create({ name: 'SPA', redirectUris: [REDIRECT_URI], public: true }))
      .clientId;
  });
  afterAll(() => server?.cleanup());

  const token = (body: string, headers: Record<string, string> = { authorization: auth }) =>
    send(`${server.url}/token`, { method: 'POST', headers: { ...FORM, ...headers }, body });

  const authorize = (params: Record<string, string>) =>
    send(`${server.url}/auth?${new URLSearchParams({ scope: 'openid', ...params })}`);

  /** Opens the login page of a fresh authorization request. */
  async function loginPage(browser: Browser, challenge = 'a'.repeat(43)) {
    const start = await browser.get(
      `${server.url}/auth?${new URLSearchParams({
        client_id: web.clientId,
        response_type: 'code',
        scope: 'openid',
        redirect_uri: REDIRECT_URI,
        code_challenge: challenge,
        code_challenge_method: 'S256',
        prompt: 'consent',
      })}`,
    );
    const { res, url } = await browser.follow(start, server.url);
    const html = await withRequestId(res).text();
    return { url, html, action: new URL(formAction(html, '/login'), server.url) };
  }

  describe('token endpoint', () => {
    it.each([
      ['missing grant_type', 'invalid_request', ''],
      ['an unknown grant_type', 'unsupported_grant_type', 'grant_type=magic'],
      ['a bogus authorization code', 'invalid_grant', BOGUS_CODE],
      ['a bogus refresh token', 'invalid_grant', 'grant_type=refresh_token&refresh_token=bogus'],
    ])('answers %s with 400 %s', async (_case, error, body) => {
      await expectOAuthError(await token(body), 400, error);
    });

    it('answers a request without client authentication with 400 invalid_request', async () => {
      await expectOAuthError(
        await token('grant_type=client_credentials', {}),
        400,
        'invalid_request',
      );
    });

    it('answers a wrong client secret and an unknown client alike: 401 invalid_client + WWW-Authenticate', async () => {
      for (const header of [basic(web.clientId, 'wrong'), basic('no-such-client', 'x')]) {
        const res = await token('grant_type=client_credentials', { authorization: header });
        expect(res.headers.get('www-authenticate')).toMatch(/^Basic .*error="invalid_client"/);
        await expectOAuthError(res, 401, 'invalid_client');
      }
    });

    it('answers a malformed Basic header with 400 invalid_request', async () => {
      for (const header of ['Basic !!!', `Basic ${Buffer.from('no-colon').toString('base64')}`])
        await expectOAuthError(
          await token('grant_type=client_credentials', { authorization: header }),
          400,
          'invalid_request',
        );
    });

    it('answers a JSON body with 400 invalid_request', async () => {
      const res = await send(`${server.url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: auth },
        body: JSON.stringify({ grant_type: 'client_credentials' }),
      });
      await expectOAuthError(res, 400, 'invalid_request');
    });

    it('answers a real code with a code_verifier that does not match with 400 invalid_grant', async () => {
      const browser = new Browser();
      const verifier = oidc.randomPKCECodeVerifier();
      const { html, action } = await loginPage(
        browser,
        await oidc.calculatePKCECodeChallenge(verifier),
      );
      const { res } = await browser.follow(
        await browser.post(action, { csrf: hiddenInput(html, 'csrf'), ...USER }),
        server.url,
      );
      const consent = await res.text();
      const { url } = await browser.follow(
        await browser.post(new URL(formAction(consent, '/consent'), server.url), {
          csrf: hiddenInput(consent, 'csrf'),
        }),
        server.url,
      );
      const code = url.searchParams.get('code');
      expect(url.href.startsWith(REDIRECT_URI) && code).toBeTruthy();
      const body = new URLSearchParams({
        grant_type: 'authorization_code',
        code: code!,
        redirect_uri: REDIRECT_URI,
        code_verifier: oidc.randomPKCECodeVerifier(),
      });
      await expectOAuthError(await token(body.toString()), 400, 'invalid_grant');
      // The refusal was the verifier's: the same code with the right one is redeemed.
      body.set('code_verifier', verifier);
      const ok = await token(body.toString());
      expect(ok.status).toBe(200);
      expect(((await ok.json()) as { id_token?: string }).id_token).toBeTruthy();
    });

    it('refuses a 2 MB body with a 4xx OAuth error, and keeps answering afterwards', async () => {
      const res = await token(`grant_type=client_credentials&pad=${'a'.repeat(TWO_MB)}`);
      expect([400, 413]).toContain(res.status);
      expect(((await res.json()) as { error: string }).error).toBe('invalid_request');
      const after = await token('grant_type=magic');
      expect(after.status).toBe(400);
      await after.body?.cancel();
    });
  });

  describe('authorization endpoint', () => {
    it.each([
      ['without client_id', {}],
      ['with an unknown client_id', { client_id: 'no-such-client' }],
    ])('shows an error page, never a redirect, %s', async (_case, params) => {
      const res = await authorize({ response_type: 'code', redirect_uri: REDIRECT_URI, ...params });
      expect(res.headers.get('location')).toBeNull();
      const html = await expectCleanPage(res, 400);
      expect(html).toMatch(/invalid_request|invalid_client/);
    });

    it('never redirects to an unregistered redirect_uri: 400 error page without Location', async () => {
      const res = await authorize({
        client_id: web.clientId,
        response_type: 'code',
        redirect_uri: 'https://attacker.example.test/cb',
        state: 'st',
      });
      expect(res.headers.get('location')).toBeNull();
      const html = await expectCleanPage(res, 400);
      expect(html).toContain('Something went wrong');
      expect(html).toMatch(/redirect_uri/);
      expect(html).not.toContain('attacker.example.test/cb?');
    });

    it.each([
      ['a missing response_type', 'invalid_request', 'web', '', /response_type/],
      ['response_type=token', 'unsupported_response_type', 'web', 'response_type=token', /type/],
      ['a public client without PKCE', 'invalid_request', 'spa', 'response_type=code', /PKCE/],
      ['code_challenge_method=plain', 'invalid_request', 'spa', PLAIN, /code_challenge_method/],
    ])(
      'sends %s back to the registered redirect_uri as error=%s',
      async (_case, error, client, query, why) => {
        const res = await authorize({
          ...Object.fromEntries(new URLSearchParams(query)),
          client_id: client === 'spa' ? spa : web.clientId,
          redirect_uri: REDIRECT_URI,
          state: 'state-1',
        });
        expect(res.status).toBe(303);
        const location = new URL(res.headers.get('location')!);
        expect(`${location.origin}${location.pathname}`).toBe(REDIRECT_URI);
        // Errors of a token response type go in the fragment; code errors in the query.
        const answer = new URLSearchParams(location.hash.slice(1) || location.search);
        expect(answer.get('error')).toBe(error);
        expect(answer.get('error_description')).toMatch(why);
        expect(answer.get('state')).toBe('state-1');
        expect(answer.get('iss')).toBe(server.url);
      },
    );
  });

  describe('introspection, revocation, userinfo', () => {
    const post = (path: string, body: string, headers: Record<string, string>) =>
      send(`${server.url}${path}`, { method: 'POST', headers: { ...FORM, ...headers }, body });

    it.each(['/token/introspection', '/token/revocation'])(
      '%s refuses a caller without client authentication (400) or with a wrong secret (401)',
      async (path) => {
        await expectOAuthError(await post(path, 'token=abc', {}), 400, 'invalid_request');
        const wrong = { authorization: basic(web.clientId, 'wrong') };
        await expectOAuthError(await post(path, 'token=abc', wrong), 401, 'invalid_client');
      },
    );

    it('introspection answers a bad token with 200 {active:false} (RFC 7662)', async () => {
      const res = await post('/token/introspection', 'token=not-a-token', { authorization: auth });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ active: false });
    });

    it('revocation answers a bad token with 200 (RFC 7009 §2.2)', async () => {
      const res = await post('/token/revocation', 'token=not-a-token', { authorization: auth });
      expect(res.status).toBe(200);
    });

    it('userinfo without a token, or with a garbage bearer, is 401 invalid_token with WWW-Authenticate', async () => {
      const none = await send(`${server.url}/me`);
      expect(none.headers.get('www-authenticate')).toMatch(/^Bearer realm=/);
      await expectOAuthError(none, 401, 'invalid_token');
      const garbage = await send(`${server.url}/me`, {
        headers: { authorization: 'Bearer garbage' },
      });
      expect(garbage.headers.get('www-authenticate')).toMatch(/^Bearer .*error="invalid_token"/);
      await expectOAuthError(garbage, 401, 'invalid_token');
    });
  });

  describe('hosted login page', () => {
    it('gives a wrong password and an unknown email the same answer, keeps the email, never echoes the password', async () => {
      const browser = new Browser();
      const { html, action } = await loginPage(browser);
      const csrf = hiddenInput(html, 'csrf');
      const answers = [];
      for (const attempt of [
        { email: USER.email, password: 'Wrong-Password-1' },
        { email: 'nobody@example.test', password: 'Wrong-Password-2' },
      ]) {
        const page = await expectCleanPage(
          withRequestId(await browser.post(action, { csrf, ...attempt })),
          400,
        );
        expect(page).toContain(`value="${attempt.email}"`);
        expect(page).not.toContain(attempt.password);
        answers.push(/role="alert"[^>]*>([^<]*)</.exec(page)?.[1]);
      }
      expect(answers[0]).toBe('The email or password is incorrect.');
      expect(answers[1]).toBe(answers[0]);
    });

    it('refuses a login POST without the csrf field with a 403 page', async () => {
      const browser = new Browser();
      const { action } = await loginPage(browser);
      const res = withRequestId(await browser.post(action, USER));
      expect(await expectCleanPage(res, 403)).toContain('The form expired');
    });

    it('answers an unknown or expired interaction with a 400 page that says so', async () => {
      for (const res of [
        await send(`${server.url}/interaction/no-such-interaction`),
        await send(`${server.url}/interaction/no-such-interaction/login`, {
          method: 'POST',
          headers: FORM,
          body: new URLSearchParams({ csrf: 'x', ...USER }).toString(),
        }),
      ])
        expect(await expectCleanPage(res, 400)).toContain('This sign-in request has expired');
    });

    it('answers a NUL character in a form field with a 400 page, not a database error', async () => {
      const browser = new Browser();
      const { html, action } = await loginPage(browser);
      const res = withRequestId(
        await browser.post(action, {
          csrf: hiddenInput(html, 'csrf'),
          email: 'ghost\u0000@example.test',
          password: 'whatever password here',
        }),
      );
      expect(await expectCleanPage(res, 400)).toContain('not allowed');
    });

    it('refuses a 2 MB login form with 413 and keeps serving the same login page', async () => {
      const browser = new Browser();
      const { url, action } = await loginPage(browser);
      const res = await browser.request(action, {
        method: 'POST',
        headers: FORM,
        body: `email=x&password=${'a'.repeat(TWO_MB)}`,
      });
      expect(await expectCleanPage(withRequestId(res), 413)).toContain('too large');
      const again = withRequestId(await browser.get(url));
      expect(await again.text()).toContain('name="password"');
    });
  });

  it('logged no 500 and no unhandled error for any of the above', () => {
    const bad = server.logs.filter((line) => (JSON.parse(line) as { level: number }).level >= 50);
    expect(bad).toEqual([]);
    expect(server.logs.some((line) => line.includes('"request refused"'))).toBe(true);
  });
});
