import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import knexFactory from 'knex';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, formAction, hiddenInput } from '../support/browser.ts';
import { REDIRECT_URI, signIn, silentAuthorizationUrl } from '../support/relying-party.ts';
import type { TestServer } from '../support/server.ts';
import { linkFromMail, recipients } from '../support/mailbox.ts';
import { askForResetLink } from '../support/password-reset.ts';
import { startMailApp, type MailApp } from '../support/mail-app.ts';
import type { TestSmtpServer } from '../support/smtp.ts';

const run = promisify(execFile);

const USER = { email: 'forgetful@example.test', password: 'my original long password' };
const NEW_PASSWORD = 'quartz lantern umbrella 42 meadow';

describe('forgot password → emailed link → new password → signed in to the app', () => {
  let app: MailApp;
  let server: TestServer;
  let smtp: TestSmtpServer;
  let rp: oidc.Configuration;

  beforeAll(async () => {
    app = await startMailApp({ clientName: 'Reset app', user: { ...USER, name: 'Fay Forgetful' } });
    ({ server, smtp, rp } = app);
  });

  afterAll(async () => {
    await app?.stop();
  });

  /** Opens the app's sign-in in `browser`, and from the login page asks for a reset link for `email`. */
  async function askForLink(browser: Browser, email: string) {
    const mailsBefore = smtp.messages.length;
    const { status, html, verifier, state } = await askForResetLink(app, browser, email);
    expect(status).toBe(200);
    return { verifier, state, mailsBefore, sentHtml: html };
  }

  const linkIn = async (to: string, after: number) =>
    (await linkFromMail(smtp, to, after, /https?:\/\/\S+\/reset\?token=[\w-]+/)).link;

  it('answers an unknown address exactly like a known one, and sends nothing', async () => {
    const known = await askForLink(new Browser(), USER.email);
    const unknown = await askForLink(new Browser(), 'nobody@example.test');
    const strip = (html: string) =>
      html.replace(/forgetful@example\.test|nobody@example\.test/g, 'X').replace(/[\w-]{43}/g, 'T');
    expect(strip(unknown.sentHtml)).toBe(strip(known.sentHtml));
    await linkIn(USER.email, known.mailsBefore);
    await new Promise((r) => setTimeout(r, 500));
    expect(smtp.messages.some((m) => recipients(m).includes('nobody@'))).toBe(false);
  });

  it('sets a new password through the link, signs the user in to the app and out everywhere else', async () => {
    const elsewhere = new Browser();
    const old = await signIn(rp, elsewhere, server.url, USER);

    const browser = new Browser();
    const { verifier, state, mailsBefore } = await askForLink(browser, USER.email);
    const link = await linkIn(USER.email, mailsBefore);
    const page = await browser.get(link);
    const html = await page.text();
    expect(html).toContain('Choose a new password');
    const action = new URL(formAction(html, '/reset'), server.url);
    const fields = { csrf: hiddenInput(html, 'csrf'), token: hiddenInput(html, 'token') };

    const weak = await browser.post(action, {
      ...fields,
      password: 'password1234',
      confirm: 'password1234',
    });
    expect(weak.status).toBe(400);
    const weakHtml = await weak.text();
    expect(weakHtml).toContain('Your new password cannot be used yet');
    expect(weakHtml).not.toContain('password1234');

    const mismatch = await browser.post(action, {
      ...fields,
      password: NEW_PASSWORD,
      confirm: `${NEW_PASSWORD}!`,
    });
    expect(await mismatch.text()).toContain('The two passwords are not the same.');

    const done = await browser.follow(
      await browser.post(action, { ...fields, password: NEW_PASSWORD, confirm: NEW_PASSWORD }),
      server.url,
    );
    expect(done.url.href.startsWith(REDIRECT_URI)).toBe(true);
    const tokens = await oidc.authorizationCodeGrant(rp, done.url, {
      pkceCodeVerifier: verifier,
      expectedState: state,
    });
    expect(tokens.claims()?.email).toBe(USER.email);

    // Signed out elsewhere, the old refresh token is dead, and a notice went out.
    const silent = await elsewhere.follow(
      await elsewhere.get(await silentAuthorizationUrl(rp)),
      server.url,
    );
    expect(silent.url.searchParams.get('error')).toBe('login_required');
    await expect(oidc.refreshTokenGrant(rp, old.refresh_token!)).rejects.toMatchObject({
      error: 'invalid_grant',
    });
    await smtp.waitForMessage(
      (m) => /password was changed|password changed/i.test(m.subject ?? ''),
      5000,
    );

    // The new password works, the old one no longer does.
    await signIn(rp, new Browser(), server.url, { ...USER, password: NEW_PASSWORD });
    await expect(signIn(rp, new Browser(), server.url, USER)).rejects.toThrow();

    // The link is single-use.
    const again = await new Browser().get(link);
    expect(again.status).toBe(400);
    expect(await again.text()).toContain('This link was already used.');
  });

  it('refuses an expired link with a clear page', async () => {
    const { mailsBefore } = await askForLink(new Browser(), USER.email);
    const link = await linkIn(USER.email, mailsBefore);
    const db = knexFactory({ client: 'pg', connection: server.env.DATABASE_URL });
    await db('email_tokens')
      .whereNull('used_at')
      .update({ expires_at: new Date(Date.now() - 1000) });
    await db.destroy();
    const res = await new Browser().get(link);
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('This link has expired.');
  });

  it('refuses a tampered link with a clear page', async () => {
    const { mailsBefore } = await askForLink(new Browser(), USER.email);
    const link = await linkIn(USER.email, mailsBefore);
    const tampered = link.replace(/token=(.)/, (_, c: string) => `token=${c === 'A' ? 'B' : 'A'}`);
    const res = await new Browser().get(tampered);
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('This link is not valid.');
  });

  it('lets an admin force a reset from the CLI: old password dead, sessions ended, link emailed', async () => {
    const forced = { email: 'forced@example.test', password: 'an admin will reset this one' };
    await server.users.create({ ...forced, emailVerified: true });
    const browser = new Browser();
    await signIn(rp, browser, server.url, forced);
    const mailsBefore = smtp.messages.length;
    const { stdout } = await run(
      process.execPath,
      ['server/cli/main.ts', 'users', 'force-reset', '--email', forced.email],
      {
        env: { PATH: process.env.PATH, ...server.env },
      },
    );
    expect(stdout).toContain('a reset link was emailed');
    await expect(signIn(rp, new Browser(), server.url, forced)).rejects.toThrow();
    const silent = await browser.follow(
      await browser.get(await silentAuthorizationUrl(rp)),
      server.url,
    );
    expect(silent.url.searchParams.get('error')).toBe('login_required');

    const link = await linkIn(forced.email, mailsBefore);
    const html = await (await browser.get(link)).text();
    const done = await browser.post(new URL(formAction(html, '/reset'), server.url), {
      csrf: hiddenInput(html, 'csrf'),
      token: hiddenInput(html, 'token'),
      password: NEW_PASSWORD,
      confirm: NEW_PASSWORD,
    });
    expect(await done.text()).toContain('Your password was changed');
    await signIn(rp, new Browser(), server.url, { ...forced, password: NEW_PASSWORD });
  });
});
