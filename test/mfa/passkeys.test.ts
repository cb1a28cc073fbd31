import * as oidc from 'openid-client';
import type { Browser, BrowserContext, CDPSession, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, screenshots } from '../support/chromium.ts';
import { authorizationRequest, REDIRECT_URI, relyingParty } from '../support/relying-party.ts';
import { startTestServer, storageEnv, type TestServer } from '../support/server.ts';
import { freePort } from '../support/services.ts';

const USER = { email: 'pia.passkey@example.test', password: 'pia has a long passphrase' };
const MFA = 'urn:latchkey:acr:mfa';
const RP_ORIGIN = new URL(REDIRECT_URI).origin;

type SignInRequest = Awaited<ReturnType<typeof authorizationRequest>>;

describe('passkeys in Chromium with a virtual authenticator', () => {
  let server: TestServer;
  let issuer: string;
  let rp: oidc.Configuration;
  let chromium: Browser;
  let context: BrowserContext;
  let page: Page;
  let cdp: CDPSession;
  let authenticatorId: string;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    // WebAuthn needs a domain for the RP ID (an IP address is refused) and a secure context:
    // http://localhost is both.
    const port = await freePort();
    issuer = `http://localhost:${port}`;
    server = await startTestServer({
      ...(await storageEnv('postgres+redis')),
      PORT: String(port),
      ISSUER: issuer,
      PASSKEY_LOGIN: 'true',
    });
    await server.users.create({ ...USER, name: 'Pia', emailVerified: true });
    const client = await server.clients.create({
      name: 'Passkey app',
      redirectUris: [REDIRECT_URI],
    });
    rp = await relyingParty(issuer, client.clientId, client.clientSecret);

    chromium = await launchChromium();
    context = await chromium.newContext();
    // The relying party is not a real host: its callback is answered in the browser itself.
    await context.route(`${RP_ORIGIN}/**`, (route) =>
      route.fulfill({ contentType: 'text/html', body: '<p>back at the app</p>' }),
    );
    page = await context.newPage();
    // Script errors and CSP refusals show here; expected 4xx answers are not errors of the page.
    page.on('pageerror', (err) => pageErrors.push(String(err)));
    page.on('console', (m) => {
      if (m.type() === 'error' && !m.text().startsWith('Failed to load resource'))
        pageErrors.push(m.text());
    });
    cdp = await context.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    ({ authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: {
        protocol: 'ctap2',
        transport: 'internal',
        hasResidentKey: true,
        hasUserVerification: true,
        isUserVerified: true,
      },
    }));
  });

  afterEach(() => expect(pageErrors).toEqual([]));
  afterAll(async () => {
    await chromium?.close();
    await server?.cleanup();
  });

  const db = (table: string) => server.db(table);

  /** A new authorization request in this browser, signed out first (the authenticator stays). */
  async function startSignIn() {
    await context.clearCookies();
    const request = await authorizationRequest(rp, { scope: 'openid email' });
    await page.goto(request.url.href);
    return request;
  }

  async function typePassword() {
    await page.getByLabel('Email').fill(USER.email);
    await page.getByLabel('Password').fill(USER.password);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  }

  /** Consents if asked, waits for the callback and redeems its code. */
  async function idToken(request: SignInRequest) {
    const allow = page.getByRole('button', { name: 'Allow' });
    const back = () => page.url().startsWith(REDIRECT_URI);
    await expect
      .poll(async () => back() || (await allow.isVisible()), { timeout: 15_000 })
      .toBe(true);
    if (!back()) {
      await allow.click();
      await page.waitForURL(`${REDIRECT_URI}**`);
    }
    return redeem(request, new URL(page.url()));
  }

  async function redeem(request: SignInRequest, callback: URL) {
    const tokens = await oidc.authorizationCodeGrant(rp, callback, {
      pkceCodeVerifier: request.verifier,
      expectedState: request.state,
    });
    return tokens.claims()!;
  }

  const passkeyEvents = (type: string) =>
    db('audit_events').where({ type }).whereRaw("detail->>'factor' = 'passkey'");

  it('adds a passkey on the account page after the current password, with recovery codes', async () => {
    const vendor = await page.request.get(`${issuer}/static/vendor/simplewebauthn-browser.js`);
    expect(vendor.status()).toBe(200);
    expect(vendor.headers()['content-type']).toContain('text/javascript');

    const request = await startSignIn();
    await typePassword();
    expect((await idToken(request)).acr).toBe('urn:latchkey:acr:pwd');

    await page.goto(`${issuer}/account/mfa`);
    expect(await page.getByText('None yet.').isVisible()).toBe(true);
    await page.locator('#password-passkey').fill('not my password');
    await page.getByRole('button', { name: 'Add a passkey' }).click();
    expect(await page.getByRole('alert').textContent()).toContain('current password is not right');

    await page.locator('#password-passkey').fill(USER.password);
    await page.getByRole('button', { name: 'Add a passkey' }).click();
    await expect(page.getByRole('heading', { name: 'Add a passkey' }).isVisible()).resolves.toBe(
      true,
    );
    expect(await page.getByLabel('Name').inputValue()).toMatch(/Chrome.* on Linux/);
    await screenshots(page, 'passkey-add');
    await page.getByRole('button', { name: 'Create passkey' }).click();

    await page.getByRole('heading', { name: 'Save your recovery codes' }).waitFor();
    expect(await page.locator('.codes code').count()).toBe(10);
    await page.getByRole('button', { name: 'I have saved them, continue' }).click();
    await page.waitForURL(`${issuer}/account/mfa`);
    const item = page.locator('.passkey');
    expect(await item.count()).toBe(1);
    expect(await item.textContent()).toMatch(/Added .* Not used yet/);
    await screenshots(page, 'account-passkeys');

    const stored = await db('webauthn_credentials').first();
    expect(stored.name).toMatch(/on Linux/);
    expect(['singleDevice', 'multiDevice']).toContain(stored.device_type);
    expect(await passkeyEvents('mfa_enrolled')).toHaveLength(1);
  });

  it('asks for the passkey after the password; the ID token says hwk or swk, mfa and acr mfa', async () => {
    const request = await startSignIn();
    await typePassword();

    const button = page.getByRole('button', { name: 'Use your passkey' });
    await button.waitFor();
    // The default for a user with a passkey and no authenticator app, focused for the keyboard.
    expect(await button.evaluate((el) => el === el.ownerDocument.activeElement)).toBe(true);
    await screenshots(page, 'mfa-passkey');
    await button.click();

    const claims = await idToken(request);
    expect(claims.acr).toBe(MFA);
    expect(claims.amr).toEqual(expect.arrayContaining(['pwd', 'mfa']));
    expect(claims.amr).toEqual(expect.arrayContaining([expect.stringMatching(/^(hwk|swk)$/)]));
    expect((await db('webauthn_credentials').first()).last_used_at).not.toBeNull();
  });

  it('refuses an assertion posted twice, a forged one, and options without the form token', async () => {
    const request = await startSignIn();
    await typePassword();
    const interaction = new URL(page.url()).pathname;

    // The browser's answer is caught on its way out (204: the page stays) and posted by hand.
    // (Routes stay registered: after page.unroute() Chromium stopped applying the context's.)
    const answers: string[] = [];
    let catching = true;
    await page.route('**/mfa/passkey', async (route) => {
      if (!catching) return route.fallback();
      answers.push(route.request().postData() ?? '');
      await route.fulfill({ status: 204 });
    });
    const answer = async () => {
      const before = answers.length;
      await page.getByRole('button', { name: 'Use your passkey' }).click();
      await expect.poll(() => answers.length, { timeout: 15_000 }).toBe(before + 1);
      return Object.fromEntries(new URLSearchParams(answers.at(-1)!));
    };
    const post = (form: Record<string, string>) =>
      page.request.post(`${issuer}${interaction}/mfa/passkey`, { form, maxRedirects: 0 });

    const first = await answer();
    const accepted = await post(first);
    expect(accepted.status()).toBe(303);
    const replayed = await post(first);
    expect(replayed.status()).toBe(400);
    expect(await replayed.text()).toContain('The passkey request expired');
    catching = false;
    // The accepted answer's sign-in goes on outside the page (a page.goto to a URL redirecting
    // to the relying party is not caught by the context's route).
    const resumed = await page.request.get(new URL(accepted.headers().location!, issuer).href, {
      maxRedirects: 0,
    });
    const callback = new URL(resumed.headers().location!);
    expect(callback.href.startsWith(REDIRECT_URI)).toBe(true);
    expect((await redeem(request, callback)).acr).toBe(MFA);

    const again = await startSignIn();
    await typePassword();
    const next = new URL(page.url()).pathname;
    const noToken = await page.request.post(`${issuer}${next}/mfa/passkey/options`, {
      form: { csrf: 'forged' },
      headers: { accept: 'application/json' },
    });
    expect(noToken.status()).toBe(403);
    expect(noToken.headers()['content-type']).toContain('application/problem+json');

    catching = true;
    const genuine = await answer();
    const credential = JSON.parse(genuine.credential!);
    const signature: string = credential.response.signature;
    credential.response.signature = `${signature.slice(0, 20)}${signature[20] === 'A' ? 'B' : 'A'}${signature.slice(21)}`;
    const forged = await page.request.post(`${issuer}${next}/mfa/passkey`, {
      form: { ...genuine, credential: JSON.stringify(credential) },
      maxRedirects: 0,
    });
    expect(forged.status()).toBe(400);
    expect(await forged.text()).toContain('could not be checked');
    // The forged answer used the challenge up: the genuine one for it is refused too.
    const late = await page.request.post(`${issuer}${next}/mfa/passkey`, {
      form: genuine,
      maxRedirects: 0,
    });
    expect(late.status()).toBe(400);

    catching = false;
    await page.reload();
    await page.getByRole('button', { name: 'Use your passkey' }).click();
    expect((await idToken(again)).acr).toBe(MFA);
    const failures = await db('audit_events').where({ type: 'sign_in', outcome: 'failure' });
    expect(failures.map((f) => f.detail.reason)).toEqual(
      expect.arrayContaining(['expired', 'wrong_passkey']),
    );
  });

  it('signs in with the passkey alone when PASSKEY_LOGIN is on', async () => {
    const request = await startSignIn();
    const button = page.getByRole('button', { name: 'Sign in with a passkey' });
    await button.waitFor();
    await screenshots(page, 'login-passkey');

    // A device that cannot verify the user: the browser refuses, the page says so and stays.
    await cdp.send('WebAuthn.setUserVerified', { authenticatorId, isUserVerified: false });
    await button.click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    expect(await alert.textContent()).toContain('cancelled or timed out');
    expect(await alert.evaluate((el) => el === el.ownerDocument.activeElement)).toBe(true);
    expect(await button.isEnabled()).toBe(true);
    await screenshots(page, 'login-passkey-cancelled');

    await cdp.send('WebAuthn.setUserVerified', { authenticatorId, isUserVerified: true });
    // Locked by someone guessing the password: the owner's passkey still signs in, and clears it.
    const pia = () => server.db('users').where({ email: USER.email });
    await pia().update({ locked_until: new Date(Date.now() + 3600_000) });
    await button.click();
    const claims = await idToken(request);
    expect((await pia().first()).locked_until).toBeNull();
    expect(claims.acr).toBe(MFA);
    expect(claims.amr).toContain('mfa');
    expect(claims.amr).not.toContain('pwd');
    expect(claims.amr).toEqual([expect.stringMatching(/^(hwk|swk)$/), 'mfa']);

    // Locked by its owner with "this wasn't me": the passkey may be the thief's, and is refused.
    await pia().update({ owner_locked_at: new Date() });
    const refused = await startSignIn();
    await button.click();
    await page.getByRole('alert').waitFor();
    expect(await page.getByRole('alert').textContent()).toContain('could not sign you in');
    expect((await pia().first()).owner_locked_at).not.toBeNull();
    await pia().update({ owner_locked_at: null });
    await button.click();
    expect((await idToken(refused)).acr).toBe(MFA);
  });

  it('renames and removes a passkey; a removed passkey no longer signs in', async () => {
    await page.goto(`${issuer}/account/mfa`);
    await page.getByText('Rename or remove').click();
    await screenshots(page, 'account-passkey-manage');
    await page.getByLabel('New name').fill('  Work   laptop ');
    await page.getByRole('button', { name: 'Rename', exact: true }).click();
    await page.waitForURL(`${issuer}/account/mfa`);
    expect(await page.locator('.passkey-name').textContent()).toBe('Work laptop');
    expect(await page.locator('.passkey .note').textContent()).not.toContain('Not used yet');

    await page.getByText('Rename or remove').click();
    await page.locator('#passkey-password-0').fill('not my password');
    await page.getByRole('button', { name: 'Remove this passkey' }).click();
    expect(await page.getByRole('alert').textContent()).toContain('current password is not right');
    expect(await page.locator('.passkey').count()).toBe(1);

    await page.getByText('Rename or remove').click();
    await page.locator('#passkey-password-0').fill(USER.password);
    await page.getByRole('button', { name: 'Remove this passkey' }).click();
    await page.waitForURL(`${issuer}/account/mfa`);
    expect(await page.getByText('None yet.').isVisible()).toBe(true);
    expect(await passkeyEvents('mfa_removed')).toHaveLength(1);
    // With no factor left, recovery codes have nothing to recover.
    expect(Number((await db('recovery_codes').count({ n: '*' }).first())?.n)).toBe(0);

    // The authenticator still holds the credential; the server no longer knows it.
    await startSignIn();
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    await page.waitForLoadState();
    await expect
      .poll(async () => page.getByRole('alert').textContent())
      .toContain('That passkey could not sign you in');
    await screenshots(page, 'login-passkey-refused');
    const refused = await db('audit_events')
      .where({ type: 'sign_in', outcome: 'failure' })
      .whereRaw("detail->>'method' = 'passkey'");
    expect(refused.map((r) => r.detail.reason)).toContain('unknown_passkey');

    // And the password alone signs in again: no second factor left to ask for.
    await typePassword();
    await page.waitForURL(`${REDIRECT_URI}**`);
  });
});
