import * as oidc from 'openid-client';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, screenshots } from '../support/chromium.ts';
import { authorizationRequest, POST_LOGOUT_URI, REDIRECT_URI } from '../support/relying-party.ts';
import { linkFromMail } from '../support/mailbox.ts';
import type { TestServer } from '../support/server.ts';
import { startMailApp, type MailApp } from '../support/mail-app.ts';
import type { TestSmtpServer } from '../support/smtp.ts';

const USER = { email: 'grace@example.test', password: 'an ordinary long passphrase' };

const RP_ORIGIN = new URL(REDIRECT_URI).origin;

describe('hosted pages in Chromium, JavaScript turned off', () => {
  let app: MailApp;
  let server: TestServer;
  let smtp: TestSmtpServer;
  let chromium: Browser;
  let context: BrowserContext;
  let page: Page;
  let rp: oidc.Configuration;

  beforeAll(async () => {
    app = await startMailApp({
      clientName: 'Harbour Notes',
      env: { REGISTRATION_ENABLED: 'true' },
      user: { ...USER, name: 'Grace Hopper' },
    });
    ({ server, smtp, rp } = app);
    chromium = await launchChromium();
    context = await newContext();
    page = await context.newPage();
  });

  /** A fresh browser profile with JavaScript off, where the relying party's callback answers locally. */
  async function newContext() {
    const fresh = await chromium.newContext({ javaScriptEnabled: false });
    // The relying party is not a real host: answer its callback in the browser itself.
    await fresh.route(`${RP_ORIGIN}/**`, (route) =>
      route.fulfill({ contentType: 'text/html', body: '<p>back at the app</p>' }),
    );
    return fresh;
  }

  afterAll(async () => {
    await chromium?.close();
    await app?.stop();
  });

  it('signs in through login and consent, with errors shown on the page and the email kept', async () => {
    const { url, verifier, state } = await authorizationRequest(rp);
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
      expectedState: state,
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
    const { url } = await authorizationRequest(rp, {
      redirect_uri: 'https://evil.example.test/cb',
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

  it('resets a forgotten password from the login page, through the emailed link', async () => {
    const { url, verifier, state } = await authorizationRequest(rp);
    await page.goto(url.href);
    const mailsBefore = smtp.messages.length;
    await page.getByRole('link', { name: 'Forgot your password?' }).click();
    await page.getByLabel('Email').fill(USER.email);
    await page.getByRole('button', { name: 'Send the link' }).click();
    await expect(page.getByRole('heading', { name: 'Check your email' }).isVisible()).resolves.toBe(
      true,
    );
    await screenshots(page, 'forgot-sent');

    await page.goto(
      (await linkFromMail(smtp, USER.email, mailsBefore, /https?:\/\/\S+\/reset\?token=[\w-]+/))
        .link,
    );
    await page.getByLabel('New password').fill('password1234');
    await page.getByLabel('Type it again').fill('password1234');
    await page.getByRole('button', { name: 'Change password' }).click();
    expect(await page.getByRole('alert').textContent()).toContain('cannot be used yet');
    await screenshots(page, 'reset-error');

    const fresh = 'velvet orbit cactus 19 harbor';
    await page.getByLabel('New password').fill(fresh);
    await page.getByLabel('Type it again').fill(fresh);
    await page.getByRole('button', { name: 'Change password' }).click();
    await page.waitForURL(`${REDIRECT_URI}**`);
    const tokens = await oidc.authorizationCodeGrant(rp, new URL(page.url()), {
      pkceCodeVerifier: verifier,
      expectedState: state,
    });
    expect(tokens.claims()?.email_verified).toBe(true);
    USER.password = fresh;
  });

  it('registers a new account and verifies it through the emailed link', async () => {
    // A browser of its own: the one above is signed in by now.
    context = await newContext();
    page = await context.newPage();
    const { url, verifier, state } = await authorizationRequest(rp);
    await page.goto(url.href);
    const mailsBefore = smtp.messages.length;
    await page.getByRole('link', { name: 'Create an account' }).click();
    await page.getByLabel('Name').fill('Katherine Johnson');
    await page.getByLabel('Email').fill('katherine@example.test');
    await page.getByLabel('Password', { exact: true }).fill('short');
    await page.getByLabel('Type the password again').fill('short');
    await page.getByRole('button', { name: 'Create account' }).click();
    expect(await page.getByRole('alert').textContent()).toContain('Use at least 12 characters');
    expect(await page.getByLabel('Email').inputValue()).toBe('katherine@example.test');
    await screenshots(page, 'register-error');

    const password = 'orbital slide rule 1962 friendship';
    await page.getByLabel('Password', { exact: true }).fill(password);
    await page.getByLabel('Type the password again').fill(password);
    await page.getByRole('button', { name: 'Create account' }).click();
    await expect(page.getByRole('heading', { name: 'Check your email' }).isVisible()).resolves.toBe(
      true,
    );
    await screenshots(page, 'verify-sent');

    await page.goto(
      (
        await linkFromMail(
          smtp,
          'katherine@example.test',
          mailsBefore,
          /https?:\/\/\S+\/verify\?token=[\w-]+/,
        )
      ).link,
    );
    await screenshots(page, 'verify');
    await page.getByRole('button', { name: 'Confirm my email address' }).click();
    await expect(
      page
        .getByRole('heading', { name: 'Signup app wants access' })
        .or(page.getByRole('heading', { name: 'Harbour Notes wants access' }))
        .isVisible(),
    ).resolves.toBe(true);
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.waitForURL(`${REDIRECT_URI}**`);
    const tokens = await oidc.authorizationCodeGrant(rp, new URL(page.url()), {
      pkceCodeVerifier: verifier,
      expectedState: state,
    });
    expect(tokens.claims()?.email_verified).toBe(true);
  });

  it('changes the password of the signed-in user', async () => {
    await page.goto(`${server.url}/account/password`);
    await page.getByLabel('Current password').fill('wrong');
    await page
      .getByLabel('New password', { exact: true })
      .fill('orbital slide rule 1962 friendship');
    await page.getByLabel('Type the new password again').fill('orbital slide rule 1962 friendship');
    await page.getByRole('button', { name: 'Change password' }).click();
    expect(await page.getByRole('alert').textContent()).toContain(
      'Your current password is not right.',
    );
    await screenshots(page, 'change-password-error');
  });
});
