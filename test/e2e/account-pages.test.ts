import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, formAction, hiddenInput } from '../support/browser.ts';
import { linkFromMail, recipients } from '../support/mailbox.ts';
import { signIn, silentAuthorizationUrl } from '../support/relying-party.ts';
import type { TestServer } from '../support/server.ts';
import { startMailApp, type MailApp } from '../support/mail-app.ts';
import type { TestSmtpServer } from '../support/smtp.ts';

const USER = { email: 'changer@example.test', password: 'the password before the change' };
const NEW_PASSWORD = 'granite feather 88 lighthouse oval';

describe("the signed-in user's account pages", () => {
  let app: MailApp;
  let server: TestServer;
  let smtp: TestSmtpServer;
  let rp: oidc.Configuration;
  beforeAll(async () => {
    app = await startMailApp({ clientName: 'Change app', user: { ...USER, name: 'Cher Changer' } });
    ({ server, smtp, rp } = app);
  });

  afterAll(async () => {
    await app?.stop();
  });

  const hasSession = async (browser: Browser) =>
    (
      await browser.follow(await browser.get(await silentAuthorizationUrl(rp)), server.url)
    ).url.searchParams.has('code');

  it('sends a browser that is not signed in to sign in first', async () => {
    const res = await new Browser().get(`${server.url}/account/password`);
    expect(res.status).toBe(303);
    expect(new URL(res.headers.get('location')!, server.url).pathname).toBe('/auth');
  });

  it('asks for the current password, applies the policy, keeps this session and ends the others', async () => {
    const other = new Browser();
    await signIn(rp, other, server.url, USER);
    const browser = new Browser();
    await signIn(rp, browser, server.url, USER);
    const url = `${server.url}/account/password`;
    const html = await (await browser.get(url)).text();
    const csrf = hiddenInput(html, 'csrf');

    expect(
      (
        await browser.post(url, {
          current: NEW_PASSWORD,
          password: NEW_PASSWORD,
          confirm: NEW_PASSWORD,
        })
      ).status,
    ).toBe(403);
    const wrong = await browser.post(url, {
      csrf,
      current: 'not it at all',
      password: NEW_PASSWORD,
      confirm: NEW_PASSWORD,
    });
    expect(wrong.status).toBe(400);
    expect(await wrong.text()).toContain('Your current password is not right.');
    const same = await browser.post(url, {
      csrf,
      current: USER.password,
      password: USER.password,
      confirm: USER.password,
    });
    expect(same.status).toBe(400);
    expect(await same.text()).toContain('used recently');

    const done = await browser.post(url, {
      csrf,
      current: USER.password,
      password: NEW_PASSWORD,
      confirm: NEW_PASSWORD,
    });
    expect(done.status).toBe(200);
    expect(await done.text()).toContain('Your password was changed');
    expect(await hasSession(browser)).toBe(true);
    expect(await hasSession(other)).toBe(false);
    await smtp.waitForMessage(
      (m) => recipients(m).includes(USER.email) && /password was changed/i.test(m.subject ?? ''),
      5000,
    );
    await signIn(rp, new Browser(), server.url, { ...USER, password: NEW_PASSWORD });
  });

  it('changes the email address once the new one confirms through its link, and tells the old one', async () => {
    const mover = { email: 'old.address@example.test', password: 'moving house this spring 2026' };
    await server.users.create({ ...mover, emailVerified: true });
    const browser = new Browser();
    await signIn(rp, browser, server.url, mover);
    const url = `${server.url}/account/email`;
    const csrf = hiddenInput(await (await browser.get(url)).text(), 'csrf');

    // A wrong password hears nothing about the address, taken or not.
    const wrong = await browser.post(url, { csrf, email: USER.email, current: 'nope' });
    const wrongText = await wrong.text();
    expect(wrongText).toContain('Your current password is not right.');
    expect(wrongText).not.toContain('Another account');
    // The right one gets the same answer for a taken address as for a free one; the address's
    // owner is told instead, and no link goes out.
    const beforeTaken = smtp.messages.length;
    const taken = await browser.post(url, { csrf, email: USER.email, current: mover.password });
    expect(await taken.text()).toContain('Check your new inbox');
    const notice = await smtp.waitForMessage(
      (m) => smtp.messages.indexOf(m) >= beforeTaken && recipients(m).includes(USER.email),
      5000,
    );
    expect(notice.subject).toMatch(/tried to move .* account to your email address/);
    expect(notice.text).not.toMatch(/token=/);
    const same = await browser.post(url, {
      csrf,
      email: 'OLD.address@example.test',
      current: mover.password,
    });
    expect(await same.text()).toContain('That is already your address.');

    const before = smtp.messages.length;
    const sent = await browser.post(url, {
      csrf,
      email: 'new.address@example.test',
      current: mover.password,
    });
    expect(await sent.text()).toContain('Check your new inbox');
    expect(
      (await server.users.findById((await server.users.findByEmail(mover.email))!.id))?.email,
    ).toBe(mover.email);
    const { link } = await linkFromMail(
      smtp,
      'new.address@example.test',
      before,
      /https?:\/\/\S+\/account\/email\/confirm\?token=[\w-]+/,
    );
    const confirm = await (await new Browser().get(link)).text();
    const done = await new Browser().post(
      new URL(formAction(confirm, '/account/email/confirm'), server.url),
      {
        csrf: hiddenInput(confirm, 'csrf'),
        token: hiddenInput(confirm, 'token'),
      },
    );
    expect(await done.text()).toContain('Your email address was changed');
    await smtp.waitForMessage(
      (m) =>
        recipients(m).includes(mover.email) &&
        /email address .* was changed/i.test(m.subject ?? ''),
      5000,
    );

    const tokens = await signIn(rp, new Browser(), server.url, {
      ...mover,
      email: 'new.address@example.test',
    });
    expect(tokens.claims()).toMatchObject({
      email: 'new.address@example.test',
      email_verified: true,
    });
    await expect(signIn(rp, new Browser(), server.url, mover)).rejects.toThrow();
  });

  it("signs the apps out with the other browsers, but keeps this browser's when asked", async () => {
    const owner = { email: 'apps.owner@example.test', password: 'apps owner first passphrase' };
    await server.users.create({ ...owner, emailVerified: true });
    const here = new Browser();
    const hereTokens = await signIn(rp, here, server.url, owner);
    const thereTokens = await signIn(rp, new Browser(), server.url, owner);
    const url = `${server.url}/account/password`;
    const change = async (from: string, to: string, keep: boolean) => {
      const csrf = hiddenInput(await (await here.get(url)).text(), 'csrf');
      const res = await here.post(url, {
        csrf,
        current: from,
        password: to,
        confirm: to,
        ...(keep && { keep_apps: '1' }),
      });
      expect(await res.text()).toContain('Your password was changed');
    };
    const second = 'apps owner second passphrase';
    await change(owner.password, second, true);
    const kept = await oidc.refreshTokenGrant(rp, hereTokens.refresh_token!);
    expect(kept.access_token).toBeTruthy();
    await expect(oidc.refreshTokenGrant(rp, thereTokens.refresh_token!)).rejects.toMatchObject({
      error: 'invalid_grant',
    });

    await change(second, 'apps owner third passphrase', false);
    await expect(oidc.refreshTokenGrant(rp, kept.refresh_token!)).rejects.toMatchObject({
      error: 'invalid_grant',
    });
  });
});
