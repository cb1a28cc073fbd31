import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { userClaims } from '../../server/accounts/users.ts';
import { Browser, formAction, hiddenInput } from '../support/browser.ts';
import { linkFromMail } from '../support/mailbox.ts';
import { authorizationRequest, REDIRECT_URI, relyingParty } from '../support/relying-party.ts';
import { startTestServer, storageEnv, type TestServer } from '../support/server.ts';
import { startMailApp, type MailApp } from '../support/mail-app.ts';
import type { TestSmtpServer } from '../support/smtp.ts';

const PASSWORD = 'copper kettle window 73 sparrow';
const VERIFY_LINK = /https?:\/\/\S+\/verify\?token=[\w-]+/;

describe('registration with email verification', () => {
  let app: MailApp;
  let server: TestServer;
  let smtp: TestSmtpServer;
  let rp: oidc.Configuration;

  beforeAll(async () => {
    app = await startMailApp({
      clientName: 'Signup app',
      env: { REGISTRATION_ENABLED: 'true', REGISTRATION_DOMAINS: 'example.test' },
    });
    ({ server, smtp, rp } = app);
  });

  afterAll(async () => {
    await app?.stop();
  });

  /** Opens the app's sign-in, follows "Create an account" and submits the form. */
  async function register(browser: Browser, fields: Record<string, string>) {
    const request = await authorizationRequest(rp, { scope: 'openid email profile' });
    const login = await browser.follow(await browser.get(request.url), server.url);
    const loginHtml = await login.res.text();
    const href = /href="([^"]*\/register)"/.exec(loginHtml)![1]!;
    const formHtml = await (await browser.get(new URL(href, server.url))).text();
    const res = await browser.post(new URL(formAction(formHtml, '/register'), server.url), {
      csrf: hiddenInput(formHtml, 'csrf'),
      password: PASSWORD,
      confirm: PASSWORD,
      ...fields,
    });
    return { ...request, res, html: await res.text() };
  }

  it('registers, verifies through the emailed link and lands signed in at the app', async () => {
    const browser = new Browser();
    const before = smtp.messages.length;
    const { html, verifier, state } = await register(browser, {
      email: 'new.user@example.test',
      name: 'New User',
    });
    expect(html).toContain('Check your email');
    const { link, mail } = await linkFromMail(smtp, 'new.user@example.test', before, VERIFY_LINK);
    expect(mail.subject).toContain('Verify your email address');

    const confirm = await (await browser.get(link)).text();
    const done = await browser.follow(
      await browser.post(new URL(formAction(confirm, '/verify'), server.url), {
        csrf: hiddenInput(confirm, 'csrf'),
        token: hiddenInput(confirm, 'token'),
      }),
      server.url,
    );
    // Consent for a first sign-in, then back at the app.
    let at = done.url;
    if (at.origin === server.url) {
      const consent = await done.res.text();
      at = (
        await browser.follow(
          await browser.post(new URL(formAction(consent, '/consent'), server.url), {
            csrf: hiddenInput(consent, 'csrf'),
          }),
          server.url,
        )
      ).url;
    }
    const tokens = await oidc.authorizationCodeGrant(rp, at, {
      pkceCodeVerifier: verifier,
      expectedState: state,
    });
    expect(tokens.claims()).toMatchObject({
      email: 'new.user@example.test',
      email_verified: true,
      name: 'New User',
    });

    const again = await browser.get(link);
    expect(again.status).toBe(400);
    expect(await again.text()).toContain('already used');
  });

  it('does not sign in an unverified account: it gets a new link instead', async () => {
    const before = smtp.messages.length;
    await register(new Browser(), { email: 'later@example.test', name: 'Later' });
    await linkFromMail(smtp, 'later@example.test', before, VERIFY_LINK);
    const browser = new Browser();
    const request = await authorizationRequest(rp);
    const login = await browser.follow(await browser.get(request.url), server.url);
    const loginHtml = await login.res.text();
    const res = await browser.post(new URL(formAction(loginHtml, '/login'), server.url), {
      csrf: hiddenInput(loginHtml, 'csrf'),
      email: 'later@example.test',
      password: PASSWORD,
    });
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('Check your email');
    const user = (await server.users.findByEmail('later@example.test'))!;
    expect(userClaims(user).email_verified).toBe(false);
  });

  it('answers a taken address like a new one, and tells the owner instead', async () => {
    const before = smtp.messages.length;
    const fresh = await register(new Browser(), {
      email: 'owner.fresh@example.test',
      name: 'Fresh',
    });
    const taken = await register(new Browser(), {
      email: 'new.user@example.test',
      name: 'Impostor',
    });
    const strip = (html: string) =>
      html.replace(/[\w.]+@example\.test/g, 'X').replace(/[\w-]{40,}/g, 'T');
    expect(taken.res.status).toBe(fresh.res.status);
    expect(strip(taken.html)).toBe(strip(fresh.html));
    const { mail } = await linkFromMail(smtp, 'new.user@example.test', before, /https?:\/\/\S+/);
    expect(mail.subject).toContain('Someone tried to register');
    expect((await server.users.findByEmail('new.user@example.test'))?.name).toBe('New User');
  });

  it('explains what is wrong, keeps the fields and never echoes the password', async () => {
    const { res, html } = await register(new Browser(), {
      email: 'someone@elsewhere.test',
      name: 'Some One',
      password: 'password1234',
      confirm: 'password1234',
    });
    expect(res.status).toBe(400);
    expect(html).toContain('Accounts can be created only with an address at example.test.');
    expect(html).toContain('commonly used password');
    expect(html).toContain('value="someone@elsewhere.test"');
    expect(html).toContain('value="Some One"');
    expect(html).not.toContain('password1234');
  });

  it('keeps the account when mail is down, and a resend works once it is back', async () => {
    await smtp.stop();
    const browser = new Browser();
    const { res, html } = await register(browser, {
      email: 'offline@example.test',
      name: 'Off Line',
    });
    expect(res.status).toBe(503);
    expect(html).toContain('We could not send the email just now');
    expect(await server.users.findByEmail('offline@example.test')).toBeDefined();
    await smtp.start();
    const before = smtp.messages.length;
    const resent = await browser.post(new URL(formAction(html, '/verify/resend'), server.url), {
      csrf: hiddenInput(html, 'csrf'),
      email: 'offline@example.test',
    });
    expect(await resent.text()).toContain('We sent another link');
    await linkFromMail(smtp, 'offline@example.test', before, VERIFY_LINK);
  });

  it('refuses a verification link on the reset page (tokens are bound to their purpose)', async () => {
    const before = smtp.messages.length;
    await register(new Browser(), { email: 'purpose@example.test', name: 'Purpose' });
    const { link } = await linkFromMail(smtp, 'purpose@example.test', before, VERIFY_LINK);
    const res = await new Browser().get(link.replace('/verify?', '/reset?'));
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('This link is not valid.');
  });
});

describe('registration switched off (the default)', () => {
  it('shows no link on the login page and refuses the form', async () => {
    const server = await startTestServer(await storageEnv('embedded'));
    try {
      const client = await server.clients.create({
        name: 'Closed app',
        redirectUris: [REDIRECT_URI],
      });
      const rp = await relyingParty(server.url, client.clientId, client.clientSecret);
      const browser = new Browser();
      const { url } = await authorizationRequest(rp);
      const login = await browser.follow(await browser.get(url), server.url);
      expect(await login.res.text()).not.toContain('Create an account');
      expect(
        (await browser.get(new URL(`${login.url.pathname}/register`, server.url))).status,
      ).toBe(404);
    } finally {
      await server.cleanup();
    }
  });
});
