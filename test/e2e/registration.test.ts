import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { userClaims } from '../../server/users/store.ts';
import { Browser, formAction, hiddenInput } from '../support/browser.ts';
import { countCalls } from '../support/counting.ts';
import { mailsTo, PASSWORD, registerAndResend, registerAt, strip } from '../support/register.ts';
import { linkFromMail } from '../support/mailbox.ts';
import { authorizationRequest, REDIRECT_URI, relyingParty } from '../support/relying-party.ts';
import { startTestServer, storageEnv, type TestServer } from '../support/server.ts';
import { startMailApp, type MailApp } from '../support/mail-app.ts';
import type { TestSmtpServer } from '../support/smtp.ts';

const VERIFY_LINK = /https?:\/\/\S+\/verify\?token=[\w-]+/;
const ATTEMPT_SUBJECT = 'Someone tried to register';

describe('registration with email verification', () => {
  let app: MailApp;
  let server: TestServer;
  let smtp: TestSmtpServer;
  let rp: oidc.Configuration;

  beforeAll(async () => {
    app = await startMailApp({
      clientName: 'Signup app',
      // Room for every registration below from the one test address.
      env: {
        REGISTRATION_ENABLED: 'true',
        REGISTRATION_DOMAINS: 'example.test',
        RATE_LIMIT_REGISTER_IP: '20/1h',
      },
    });
    ({ server, smtp, rp } = app);
  });

  afterAll(async () => {
    await app?.stop();
  });

  const register = (browser: Browser, fields: Record<string, string>) =>
    registerAt(app, browser, fields);

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
    expect(taken.res.status).toBe(fresh.res.status);
    expect(strip(taken.html)).toBe(strip(fresh.html));
    const { mail } = await linkFromMail(smtp, 'new.user@example.test', before, /https?:\/\/\S+/);
    expect(mail.subject).toContain(ATTEMPT_SUBJECT);
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

  it('answers an address too long to be one with the form error, not a server error', async () => {
    const email = `${'a'.repeat(5000)}@example.test`;
    const { res, html } = await register(new Browser(), { email, name: 'Long Address' });
    expect(res.status).toBe(400);
    expect(html).toContain('Enter your email address, like name@example.com.');
    expect(html).toContain('value="Long Address"');
    expect(html).not.toContain(PASSWORD);
  });

  it('answers "send again" for a taken address like for a new one, with the same work, and tells the owner instead', async () => {
    await server.users.create({
      email: 'owner.resend@example.test',
      password: 'the owner has their own password',
      name: 'Owner',
      emailVerified: true,
    });
    const before = smtp.messages.length;
    const fresh = await registerAndResend(app, 'fresh.resend@example.test');
    const taken = await registerAndResend(app, 'owner.resend@example.test');
    expect(taken.registered).toEqual(fresh.registered);
    expect(taken.resent).toEqual(fresh.resent);
    expect(taken.resent.status).toBe(200);
    expect(taken.work).toEqual(fresh.work);
    expect(fresh.work.hashes).toBe(1);
    // Both asked twice: a link each time to the new address, a notice each time to the owner.
    expect(
      await mailsTo(smtp, 'fresh.resend@example.test', before, 'Verify your email', 2),
    ).toHaveLength(2);
    expect(
      await mailsTo(smtp, 'owner.resend@example.test', before, ATTEMPT_SUBJECT, 2),
    ).toHaveLength(2);
    expect(await server.users.findByEmail('owner.resend@example.test')).toMatchObject({
      name: 'Owner',
      email_verified: true,
    });
  });

  it('answers the same while mail is down, and sends every mail once it is back', async () => {
    await smtp.stop();
    let before: number;
    try {
      const fresh = await registerAndResend(app, 'offline@example.test');
      const taken = await registerAndResend(app, 'new.user@example.test');
      expect(fresh.registered.status).toBe(200);
      expect(fresh.registered.page).toContain('Check your email');
      expect(taken.registered).toEqual(fresh.registered);
      expect(taken.resent).toEqual(fresh.resent);
      expect(await server.users.findByEmail('offline@example.test')).toBeDefined();
    } finally {
      before = smtp.messages.length;
      await smtp.start();
    }
    // Sent in the background, retried until the server is back: nothing is lost.
    expect(
      await mailsTo(smtp, 'offline@example.test', before, 'Verify your email', 2),
    ).toHaveLength(2);
    expect(await mailsTo(smtp, 'new.user@example.test', before, ATTEMPT_SUBJECT, 2)).toHaveLength(
      2,
    );
    const { link } = await linkFromMail(smtp, 'offline@example.test', before, VERIFY_LINK);
    expect((await new Browser().get(link)).status).toBe(200);
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

describe('registration with the default wait between two emails, and a small limit', () => {
  let app: MailApp;

  beforeAll(async () => {
    app = await startMailApp({
      clientName: 'Signup app',
      env: {
        REGISTRATION_ENABLED: 'true',
        EMAIL_RESEND_SECONDS: '60',
        RATE_LIMIT_REGISTER_IP: '4/1h',
      },
    });
  });

  afterAll(async () => {
    await app?.stop();
  });

  it('answers "send again" right after registering the same for a taken and a new address', async () => {
    await app.server.users.create({
      email: 'owner.waits@example.test',
      password: 'the owner has their own password',
      emailVerified: true,
    });
    const fresh = await registerAndResend(app, 'fresh.waits@example.test');
    const taken = await registerAndResend(app, 'owner.waits@example.test');
    expect(taken.registered).toEqual(fresh.registered);
    expect(taken.resent).toEqual(fresh.resent);
    expect(taken.work).toEqual(fresh.work);
  });

  it('counts a registration against the limit before checking the password: one over it costs no strength check', async () => {
    const checks = countCalls(app.server.strength, 'estimate');
    try {
      const statuses: number[] = [];
      let checksBefore = 0;
      for (let i = 0; i < 6 && statuses.at(-1) !== 429; i++) {
        checksBefore = checks.calls;
        const { res } = await registerAt(app, new Browser(), {
          email: `weak${i}@example.test`,
          name: 'Weak',
          password: 'password1234',
          confirm: 'password1234',
        });
        statuses.push(res.status);
      }
      expect(statuses.at(-1)).toBe(429);
      expect(statuses.slice(0, -1).every((status) => status === 400)).toBe(true);
      expect(checks.calls).toBe(checksBefore);
      expect(checks.calls).toBe(statuses.length - 1);
    } finally {
      checks.restore();
    }
  });
});

describe('registration switched off (the default)', () => {
  it('shows no link on the login page and refuses the form; closing the server ends its password-check threads', async () => {
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
      expect(server.strength.threadCount()).toBeGreaterThan(0);
    } finally {
      await server.cleanup();
    }
    expect(server.strength.threadCount()).toBe(0);
  });
});
