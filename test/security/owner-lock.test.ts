import type * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, formAction, hiddenInput } from '../support/browser.ts';
import { codeAt, Flow, setupKey } from '../support/flow.ts';
import { linkFromMail } from '../support/mailbox.ts';
import { FIREFOX, NEW_PASSWORD, ownerSteps, SAFARI, SECURE_LINK } from '../support/owners.ts';
import { authorizationRequest, signIn } from '../support/relying-party.ts';
import type { TestServer } from '../support/server.ts';
import { startMailApp, type MailApp } from '../support/mail-app.ts';
import type { TestSmtpServer } from '../support/smtp.ts';

describe("what 'this wasn't me' promises: the intruder is out and stays out", () => {
  let app: MailApp;
  let server: TestServer;
  let smtp: TestSmtpServer;
  let rp: oidc.Configuration;
  beforeAll(async () => {
    app = await startMailApp({ clientName: 'Owner app' });
    ({ server, smtp, rp } = app);
  });
  afterAll(async () => {
    await app?.stop();
  });

  const { newUser, row, hasSession, secure: press, resetFrom } = ownerSteps(() => app);

  /** A new owner, signed in in `flow`, who set up an authenticator app `daysAgo` days ago. */
  async function ownerWithAuthenticator(daysAgo: number) {
    const owner = await newUser();
    const flow = new Flow(server, rp, owner);
    await flow.signIn();
    await flow.enrolAuthenticator();
    await server
      .db('totp_factors')
      .where({ user_id: owner.id })
      .update({ created_at: new Date(Date.now() - daysAgo * 86_400_000) });
    return { owner, flow };
  }

  /** Owner's known browser, then the thief's (new device → mail with the link to the owner). */
  async function thiefSignsIn() {
    const owner = await newUser();
    await signIn(rp, new Browser({ userAgent: FIREFOX }), server.url, owner);
    const before = smtp.messages.length;
    const thief = new Browser({ userAgent: SAFARI });
    await signIn(rp, thief, server.url, owner);
    const { link } = await linkFromMail(smtp, owner.email, before, SECURE_LINK, /Safari/);
    return { owner, thief, link };
  }

  it('a session in use while the owner presses the button does not outlive it', async () => {
    const { owner, thief, link } = await thiefSignsIn();
    // The thief keeps their browser busy with ordinary silent sign-ins (bounded loop).
    let stop = false;
    const poll = async () => {
      for (let i = 0; i < 400 && !stop; i++) await hasSession(thief).catch(() => false);
    };
    const pollers = [poll(), poll(), poll()];
    await new Promise((r) => setTimeout(r, 150));
    const done = await press(link);
    await new Promise((r) => setTimeout(r, 150));
    stop = true;
    await Promise.all(pollers);
    expect(done.html).toContain('Your account is locked');
    expect((await row(owner.id)).owner_locked_at).not.toBeNull();
    // Requests in flight wrote the session back after it was deleted: it must not stand.
    expect(await hasSession(thief)).toBe(false);
    expect((await thief.get(`${server.url}/account/mfa`)).status).toBe(303);
  });

  it('a session of an owner-locked account signs in to no app and opens no account page', async () => {
    // The lock alone (without the sign-out, which a race may undo) stops a session in use.
    const { owner, thief } = await thiefSignsIn();
    await server.db('users').where({ id: owner.id }).update({ owner_locked_at: new Date() });
    expect(await hasSession(thief)).toBe(false);
    expect((await thief.get(`${server.url}/account/mfa`)).status).toBe(303);
  });

  it('removes a factor the thief added, so the reset lets the owner back in', async () => {
    const { owner, thief, link } = await thiefSignsIn();
    // The thief (password only; the owner has no factor) adds an authenticator app.
    const page = await (await thief.get(`${server.url}/account/mfa/totp`)).text();
    const secret = setupKey(page);
    const res = await thief.post(`${server.url}/account/mfa/totp`, {
      csrf: hiddenInput(page, 'csrf'),
      password: owner.password,
      code: await codeAt(secret),
    });
    expect(res.status).toBe(200); // recovery codes shown to the thief
    // The owner presses "this wasn't me", then resets the password from the page.
    const done = await press(link);
    await resetFrom(done.html);
    expect((await row(owner.id)).owner_locked_at).toBeNull();
    const factors = await server.db('totp_factors').where({ user_id: owner.id });
    expect(done.html).toContain(
      'Two-step verification added to the account in the last days was removed',
    );
    expect(factors).toHaveLength(0);
    await expect(
      signIn(rp, new Browser(), server.url, { ...owner, password: NEW_PASSWORD }),
    ).resolves.toBeTruthy();
  });
  it("the factor's own notice locks without removing it; the earlier sign-in notice still can", async () => {
    const { owner, thief, link: signInLink } = await thiefSignsIn();
    const page = await (await thief.get(`${server.url}/account/mfa/totp`)).text();
    const before = smtp.messages.length;
    await thief.post(`${server.url}/account/mfa/totp`, {
      csrf: hiddenInput(page, 'csrf'),
      password: owner.password,
      code: await codeAt(setupKey(page)),
    });
    const factorLink = (
      await linkFromMail(smtp, owner.email, before, SECURE_LINK, /Two-step verification of your/)
    ).link;
    // Pressed first, the later notice locks and signs out, and leaves the factor it reports
    // (the mailbox alone must not strip a factor the owner has just set up)...
    const first = await press(factorLink);
    expect(first.html).toContain('Your account is locked');
    expect(await hasSession(thief)).toBe(false);
    expect(await server.db('totp_factors').where({ user_id: owner.id })).toHaveLength(1);
    // ...and has not used up the earlier one, whose event came before the factor.
    const second = await press(signInLink);
    expect(second.html).toContain('was removed');
    expect(await server.db('totp_factors').where({ user_id: owner.id })).toHaveLength(0);
    await resetFrom(second.html);
    await expect(
      signIn(rp, new Browser(), server.url, { ...owner, password: NEW_PASSWORD }),
    ).resolves.toBeTruthy();
  });

  it('keeps the factor a notice reports, made in the same millisecond as the notice', async () => {
    // The factor's time is the database's, to the microsecond; a notice's is this process's, to
    // the millisecond, taken just after the factor was stored. Within one millisecond the
    // notice's time reads as before the factor, and its link stripped the factor it reports.
    const { owner } = await ownerWithAuthenticator(0);
    await server
      .db('totp_factors')
      .where({ user_id: owner.id })
      .update({ created_at: '2026-12-05T10:00:00.123456Z' });
    expect(await server.mfa.forgetSince(owner.id, new Date('2026-12-05T10:00:00.123Z'))).toBe(0);
    expect(await server.db('totp_factors').where({ user_id: owner.id })).toHaveLength(1);
    // A notice a millisecond earlier (a sign-in before the factor) still removes it.
    expect(await server.mfa.forgetSince(owner.id, new Date('2026-12-05T10:00:00.122Z'))).toBe(1);
    expect(await server.db('totp_factors').where({ user_id: owner.id })).toHaveLength(0);
  });

  it('keeps a factor older than the link: the mailbox alone cannot strip an established one', async () => {
    const { owner, flow } = await ownerWithAuthenticator(30);
    // A password change mails the owner a link; whoever reads that mailbox presses it.
    const before = smtp.messages.length;
    await flow.get('/account/password');
    await flow.submit('/account/password', {
      current: owner.password,
      password: NEW_PASSWORD,
      confirm: NEW_PASSWORD,
    });
    const { link } = await linkFromMail(smtp, owner.email, before, SECURE_LINK);
    const done = await press(link);
    expect(done.html).toContain('Your account is locked');
    expect(done.html).not.toContain('was removed');
    expect(await server.db('totp_factors').where({ user_id: owner.id })).toHaveLength(1);
  });

  it("a password change (the owner's reaction) kills the thief's pending email change", async () => {
    const { owner, thief } = await thiefSignsIn();
    // The thief asks to move the account to their address; the link goes to their inbox.
    const url = `${server.url}/account/email`;
    const csrf = hiddenInput(await (await thief.get(url)).text(), 'csrf');
    const before = smtp.messages.length;
    await thief.post(url, { csrf, email: 'thief@example.test', current: owner.password });
    const { link } = await linkFromMail(
      smtp,
      'thief@example.test',
      before,
      /\S+\/account\/email\/confirm\?\S+/,
    );
    // The owner, worried, changes the password from their own browser (ends the thief's session).
    const mine = new Browser({ userAgent: FIREFOX });
    await signIn(rp, mine, server.url, owner);
    const pw = `${server.url}/account/password`;
    const c2 = hiddenInput(await (await mine.get(pw)).text(), 'csrf');
    const changed = await mine.post(pw, {
      csrf: c2,
      current: owner.password,
      password: NEW_PASSWORD,
      confirm: NEW_PASSWORD,
    });
    expect(await changed.text()).toContain('Your password was changed');
    expect(await hasSession(thief)).toBe(false);
    // The thief, signed out, can no longer confirm the email change from their inbox.
    const confirm = await new Browser().get(link);
    expect(confirm.status).toBe(400);
    expect(await confirm.text()).toContain('This link was already used');
    expect((await row(owner.id)).email).toBe(owner.email);
  });
  it("the thief's device cookie dies with 'this wasn't me': their guesses lock the account again", async () => {
    const { owner, thief, link } = await thiefSignsIn();
    const done = await press(link);
    await resetFrom(done.html);
    // The thief guesses the new password from their old browser: 9 wrong guesses (threshold 5).
    for (let i = 0; i < 9; i++)
      await expect(
        signIn(rp, thief, server.url, { ...owner, password: `guess number ${i} for you` }),
      ).rejects.toThrow();
    const r = await row(owner.id);
    expect(r.locked_until).not.toBeNull();
  });

  /** The thief posts the right password on a fresh sign-in and keeps the resume redirect unfollowed. */
  async function stashPasswordStep(thief: Browser, owner: { email: string; password: string }) {
    const { url } = await authorizationRequest(rp, { scope: 'openid email' });
    const { res } = await thief.follow(await thief.get(url), server.url);
    const html = await res.text();
    const posted = await thief.post(new URL(formAction(html, '/login'), server.url), {
      csrf: hiddenInput(html, 'csrf'),
      email: owner.email,
      password: owner.password,
    });
    expect(posted.status).toBe(303);
    return new URL(posted.headers.get('location')!, server.url);
  }

  it("after 'this wasn't me' and the owner's reset, the stashed step does not sign the thief in", async () => {
    const owner = await newUser();
    await signIn(rp, new Browser({ userAgent: FIREFOX }), server.url, owner);
    const before = smtp.messages.length;
    const thief = new Browser({ userAgent: SAFARI });
    const resume = await stashPasswordStep(thief, owner);
    // Sign-ins count in whole seconds: what the owner does next is a second later at least.
    await new Promise((r) => setTimeout(r, 1100));
    const { link } = await linkFromMail(smtp, owner.email, before, SECURE_LINK);
    const done = await press(link);
    expect(done.html).toContain('Your account is locked');
    await resetFrom(done.html);
    expect((await row(owner.id)).owner_locked_at).toBeNull();
    // Well after the reset (whole seconds), the thief follows the redirect it kept.
    await new Promise((r) => setTimeout(r, 1100));
    const { url } = await thief.follow(await thief.get(resume), server.url);
    const account = await thief.get(`${server.url}/account/mfa`);
    expect(url.searchParams.has('code')).toBe(false);
    expect(account.status).toBe(303);
    expect(await hasSession(thief)).toBe(false);
  });

  it('after a voluntary password change, the stashed step does not sign the thief in', async () => {
    const owner = await newUser();
    const thief = new Browser({ userAgent: SAFARI });
    const resume = await stashPasswordStep(thief, owner);
    await new Promise((r) => setTimeout(r, 1100)); // whole seconds, as above
    // The owner changes the password from their account page.
    const ownerBrowser = new Browser({ userAgent: FIREFOX });
    await signIn(rp, ownerBrowser, server.url, owner);
    const { res } = await ownerBrowser.follow(
      await ownerBrowser.get(`${server.url}/account/password`),
      server.url,
    );
    const html = await res.text();
    const changed = await ownerBrowser.post(`${server.url}/account/password`, {
      csrf: hiddenInput(html, 'csrf'),
      current: owner.password,
      password: NEW_PASSWORD,
      confirm: NEW_PASSWORD,
    });
    expect(changed.status).toBe(200);
    await new Promise((r) => setTimeout(r, 1100));
    const { url } = await thief.follow(await thief.get(resume), server.url);
    expect(url.searchParams.has('code')).toBe(false);
    expect((await thief.get(`${server.url}/account/mfa`)).status).toBe(303);
  });

  it("a mailbox-only attacker cannot strip the owner's authenticator with reset + 'this wasn't me'", async () => {
    const { owner } = await ownerWithAuthenticator(3);
    expect(await server.db('totp_factors').where({ user_id: owner.id })).toHaveLength(1);

    // The attacker reads the owner's mailbox only: forgot password → reset link.
    const attacker = new Browser();
    let before = smtp.messages.length;
    const { url } = await authorizationRequest(rp, { scope: 'openid email' });
    const login = await attacker.follow(await attacker.get(url), server.url);
    const forgotHref = /href="([^"]*\/forgot[^"]*)"/
      .exec(await login.res.text())![1]!
      .replace(/&amp;/g, '&');
    const forgotHtml = await (await attacker.get(new URL(forgotHref, server.url))).text();
    await attacker.post(new URL(formAction(forgotHtml, '/forgot'), server.url), {
      csrf: hiddenInput(forgotHtml, 'csrf'),
      email: owner.email,
    });
    const reset = (
      await linkFromMail(smtp, owner.email, before, /https?:\/\/\S+\/reset\?token=[\w-]+/)
    ).link;
    const html = await (await attacker.get(reset)).text();
    before = smtp.messages.length;
    const first = 'attacker chosen passphrase 77';
    await attacker.post(new URL(formAction(html, '/reset'), server.url), {
      csrf: hiddenInput(html, 'csrf'),
      token: hiddenInput(html, 'token'),
      password: first,
      confirm: first,
    });
    // The password-changed notice lands in the same mailbox, with its "this wasn't me" link.
    const { link } = await linkFromMail(smtp, owner.email, before, SECURE_LINK);
    const done = await press(link);
    await resetFrom(done.html);
    // The attacker now signs in with the password alone: the authenticator must still be asked.
    const shown: string[] = [];
    const signedIn = await signIn(rp, new Browser(), server.url, {
      ...owner,
      password: NEW_PASSWORD,
      shown,
    }).then(
      () => true,
      () => false,
    );
    expect(signedIn).toBe(false);
    expect(await server.db('totp_factors').where({ user_id: owner.id })).toHaveLength(1);
  });
});
