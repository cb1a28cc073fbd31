import * as oidc from 'openid-client';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, screenshots } from '../support/chromium.ts';
import { POST_LOGOUT_URI, REDIRECT_URI, relyingParty } from '../support/relying-party.ts';
import { startTestServer, storageEnv, type TestServer } from '../support/server.ts';

const USER = { email: 'grace@example.test', password: 'an ordinary long passphrase' };
const RP_ORIGIN = new URL(REDIRECT_URI).origin;

describe('hosted pages in Chromium, JavaScript turned off', () => {
  let server: TestServer;
  let chromium: Browser;
  let context: BrowserContext;
  let page: Page;
  let rp: oidc.Configuration;

  beforeAll(async () => {
    server = await startTestServer(await storageEnv('postgres+redis'));
    await server.users.create({ ...USER, name: 'Grace Hopper', emailVerified: true });
    const client = await server.clients.create({
      name: 'Harbour Notes',
      redirectUris: [REDIRECT_URI],
      postLogoutRedirectUris: [POST_LOGOUT_URI],
    });
    rp = await relyingParty(server.url, client.clientId, client.clientSecret);
    chromium = await launchChromium();
    context = await chromium.newContext({ javaScriptEnabled: false });
    // The relying party is not a real host: answer its callback in the browser itself.
    await context.route(`${RP_ORIGIN}/**`, (route) =>
      route.fulfill({ contentType: 'text/html', body: '<p>back at the app</p>' }),
    );
    page = await context.newPage();
  });
  afterAll(async () => {
    await chromium?.close();
    await server?.cleanup();
  });

  it('signs in through login and consent, with errors shown on the page and the email kept', async () => {
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(rp, {
      redirect_uri: REDIRECT_URI,
      scope: 'openid email profile',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state: 'st',
    });
    await page.goto(url.href);
    await expect(page.getByRole('heading', { name: 'Sign in' }).isVisible()).resolves.toBe(true);
    expect(await page.getByText('Harbour Notes').first().isVisible()).toBe(true);
    expect(
      await page.locator('#email').evaluate((el) => el === el.ownerDocument.activeElement),
    ).toBe(true);
    await screenshots(page, 'login');

    await page.getByLabel('Email').fill(USER.email);
    await page.getByLabel('Password').fill('wrong password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    expect(await page.getByRole('alert').textContent()).toContain(
      'The email or password is incorrect.',
    );
    expect(await page.getByLabel('Email').inputValue()).toBe(USER.email);
    expect(await page.getByLabel('Password').inputValue()).toBe('');
    await screenshots(page, 'login-error');

    await page.getByLabel('Password').fill(USER.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(
      page.getByRole('heading', { name: 'Harbour Notes wants access' }).isVisible(),
    ).resolves.toBe(true);
    expect(await page.getByRole('listitem').allTextContents()).toEqual(
      expect.arrayContaining([
        'See your email address and whether it is verified',
        'See your name',
      ]),
    );
    await screenshots(page, 'consent');

    await page.getByRole('button', { name: 'Allow' }).click();
    await page.waitForURL(`${REDIRECT_URI}**`);
    const tokens = await oidc.authorizationCodeGrant(rp, new URL(page.url()), {
      pkceCodeVerifier: verifier,
      expectedState: 'st',
    });
    expect(tokens.claims()?.email).toBe(USER.email);

    const end = oidc.buildEndSessionUrl(rp, {
      id_token_hint: tokens.id_token!,
      post_logout_redirect_uri: POST_LOGOUT_URI,
    });
    await page.goto(end.href);
    await expect(page.getByRole('heading', { name: 'Sign out?' }).isVisible()).resolves.toBe(true);
    await screenshots(page, 'logout');
    await page.getByRole('button', { name: 'Yes, sign me out' }).click();
    await page.waitForURL(`${POST_LOGOUT_URI}**`);
  });

  it('shows the error page, without redirecting, for an unregistered redirect_uri', async () => {
    const url = oidc.buildAuthorizationUrl(rp, {
      redirect_uri: 'https://evil.example.test/cb',
      scope: 'openid',
      code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
    });
    const response = await page.goto(url.href);
    expect(response?.status()).toBe(400);
    expect(new URL(page.url()).origin).toBe(server.url);
    expect(await page.getByRole('heading').first().textContent()).toBe('Something went wrong');
    await screenshots(page, 'error');
  });

  it('shows the signed-out page after a logout without a redirect', async () => {
    // With no session left the provider skips the question; without JavaScript its
    // auto-submitting form shows a Continue button instead.
    await page.goto(`${server.url}/session/end`);
    await page.getByRole('button', { name: 'Continue' }).click();
    await expect(
      page.getByRole('heading', { name: 'You are signed out' }).isVisible(),
    ).resolves.toBe(true);
    await screenshots(page, 'signed-out');
  });
});
