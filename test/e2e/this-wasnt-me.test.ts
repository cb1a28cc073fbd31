import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, formAction, hiddenInput } from '../support/browser.ts';
import { runCli } from '../support/cli.ts';
import { codeAt, Flow, setupKey } from '../support/flow.ts';
import { linkFromMail, recipients } from '../support/mailbox.ts';
import { FIREFOX, NEW_PASSWORD, ownerSteps, SAFARI, SECURE_LINK } from '../support/owners.ts';
import { signIn } from '../support/relying-party.ts';
import type { TestServer } from '../support/server.ts';
import { startMailApp, type MailApp } from '../support/mail-app.ts';
import type { TestSmtpServer } from '../support/smtp.ts';

describe('"this wasn\'t me" links in security emails', () => {
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

  const { newUser, row, hasSession, secure, resetFrom } = ownerSteps(() => app);
  const refreshWorks = (tokens: oidc.TokenEndpointResponse) =>
    oidc.refreshTokenGrant(rp, tokens.refresh_token!).then(
      () => true,
      () => false,
    );

  /** Signed in as the user, changes the email to `newEmail` and confirms it from the new inbox. */
  async function changeEmail(browser: Browser, user: { password: string }, newEmail: string) {
    const url = `${server.url}/account/email`;
    const csrf = hiddenInput(await (await browser.get(url)).text(), 'csrf');
    const before = smtp.messages.length;
    await browser.post(url, { csrf, email: newEmail, current: user.password });
    const { link } = await linkFromMail(
      smtp,
      newEmail,
      before,
      /\S+\/account\/email\/confirm\?\S+/,
    );
    const confirm = await (await browser.get(link)).text();
    const done = await browser.post(new URL(formAction(confirm, '/confirm'), server.url), {
      csrf: hiddenInput(confirm, 'csrf'),
      token: hiddenInput(confirm, 'token'),
    });
    expect(await done.text()).toContain('Your email address was changed');
  }

  it('from the old address: restores it, ends every session and refresh token, locks the account; a GET alone changes nothing', async () => {
    const owner = await newUser();
    const ownerBrowser = new Browser();
    const ownerTokens = await signIn(rp, ownerBrowser, server.url, owner);
    const attacker = new Browser();
    const attackerTokens = await signIn(rp, attacker, server.url, owner);
    const mailsBefore = smtp.messages.length;
    await changeEmail(attacker, owner, 'thief@example.test');

    const { link, mail } = await linkFromMail(smtp, owner.email, mailsBefore, SECURE_LINK);
    expect(mail.subject).toMatch(/email address .* was changed/i);
    expect(mail.text).toMatch(/7 days/);

    // A mail scanner opening the link changes nothing.
    const scanned = await new Browser().get(link);
    expect(scanned.status).toBe(200);
    expect(await scanned.text()).toContain(owner.email);
    expect(await row(owner.id)).toMatchObject({
      email: 'thief@example.test',
      owner_locked_at: null,
    });
    expect(await hasSession(attacker)).toBe(true);
    expect(await refreshWorks(attackerTokens)).toBe(true);

    const done = await secure(link);
    expect(done.status).toBe(200);
    expect(done.html).toContain('Your account is locked');
    expect(done.html).toContain(owner.email);
    expect(await row(owner.id)).toMatchObject({ email: owner.email, email_verified: true });
    expect((await row(owner.id)).owner_locked_at).not.toBeNull();
    expect(await hasSession(attacker)).toBe(false);
    expect(await hasSession(ownerBrowser)).toBe(false);
    for (const tokens of [ownerTokens, attackerTokens])
      await expect(oidc.refreshTokenGrant(rp, tokens.refresh_token!)).rejects.toMatchObject({
        error: 'invalid_grant',
      });
    const audited = await server.db('audit_events').where({
      type: 'account_secured_by_owner',
      subject: owner.id,
    });
    expect(audited).toHaveLength(1);
    expect(JSON.parse(JSON.stringify(audited[0].detail))).toMatchObject({
      notice: 'email_changed',
      emailRestored: true,
    });

    // The link is single-use.
    const again = await new Browser().get(link);
    expect(again.status).toBe(400);
    expect(await again.text()).toContain('This link was already used.');

    // The lock stands through wrong and right passwords alike (no counter clears it).
    await expect(signIn(rp, new Browser(), server.url, owner)).rejects.toThrow();
    await expect(
      signIn(rp, new Browser(), server.url, { ...owner, password: 'a wrong guess' }),
    ).rejects.toThrow();
    await expect(signIn(rp, new Browser(), server.url, owner)).rejects.toThrow();
    // Nor does a browser that signed in before (its device cookie passes the guessing lock only).
    await expect(signIn(rp, attacker, server.url, owner)).rejects.toThrow();
    expect((await row(owner.id)).owner_locked_at).not.toBeNull();

    // The way back: the page's password reset, which unlocks.
    expect(await resetFrom(done.html)).toContain('Your password was changed');
    const back = await signIn(rp, new Browser(), server.url, { ...owner, password: NEW_PASSWORD });
    expect(back.claims()?.email).toBe(owner.email);
  });

  it('ends the links the thief could still use: their pending email change no longer confirms', async () => {
    const owner = await newUser();
    const attacker = new Browser();
    await signIn(rp, attacker, server.url, owner);
    const mailsBefore = smtp.messages.length;
    await changeEmail(attacker, owner, 'thief2@example.test');
    const { link } = await linkFromMail(smtp, owner.email, mailsBefore, SECURE_LINK);
    // Before the owner acts, the thief starts moving the account on to another address.
    const url = `${server.url}/account/email`;
    const csrf = hiddenInput(await (await attacker.get(url)).text(), 'csrf');
    const pendingFrom = smtp.messages.length;
    await attacker.post(url, { csrf, email: 'thief2b@example.test', current: owner.password });
    const { link: pending } = await linkFromMail(
      smtp,
      'thief2b@example.test',
      pendingFrom,
      /\S+\/account\/email\/confirm\?\S+/,
    );

    await secure(link);
    const res = await attacker.get(pending);
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('This link was already used.');
    expect((await row(owner.id)).email).toBe(owner.email);
  });

  it("keeps the old address's link working when the thief uses their own first", async () => {
    const owner = await newUser();
    const attacker = new Browser({ userAgent: FIREFOX });
    await signIn(rp, new Browser({ userAgent: SAFARI }), server.url, owner);
    await signIn(rp, attacker, server.url, owner);
    // The owner is told of the thief's device too; the wanted link is the email-changed one.
    await smtp.waitForMessage(
      (m) => recipients(m).includes(owner.email) && /new sign-in/i.test(m.subject ?? ''),
      5000,
    );
    const mailsBefore = smtp.messages.length;
    await changeEmail(attacker, owner, 'thief3@example.test');
    const { link: ownersLink, mail } = await linkFromMail(
      smtp,
      owner.email,
      mailsBefore,
      SECURE_LINK,
    );
    expect(mail.subject).toMatch(/email address .* was changed/i);

    // A notice to the thief's new address (a new device) carries a link too; they use it first.
    const afterChange = smtp.messages.length;
    await signIn(rp, new Browser({ userAgent: 'curl/8.0' }), server.url, {
      ...owner,
      email: 'thief3@example.test',
    });
    const { link: thiefsLink } = await linkFromMail(
      smtp,
      'thief3@example.test',
      afterChange,
      SECURE_LINK,
    );
    expect((await secure(thiefsLink)).status).toBe(200);
    expect((await row(owner.id)).email).toBe('thief3@example.test');

    const done = await secure(ownersLink);
    expect(done.status).toBe(200);
    expect((await row(owner.id)).email).toBe(owner.email);
  });

  it('expires after SECURE_ACCOUNT_LINK_TTL (7 days by default)', async () => {
    const owner = await newUser();
    const browser = new Browser();
    await signIn(rp, browser, server.url, owner);
    const mailsBefore = smtp.messages.length;
    await changeEmail(browser, owner, 'moved@example.test');
    const { link } = await linkFromMail(smtp, owner.email, mailsBefore, SECURE_LINK);
    const [token] = await server
      .db('email_tokens')
      .where({ user_id: owner.id })
      .whereNull('used_at')
      .whereIn('purpose', ['secure_account', 'restore_email']);
    const lifetime = new Date(token.expires_at).getTime() - new Date(token.created_at).getTime();
    expect(Math.abs(lifetime - 7 * 24 * 3600 * 1000)).toBeLessThan(60_000);

    await server
      .db('email_tokens')
      .where({ user_id: owner.id, purpose: token.purpose })
      .update({ expires_at: new Date(Date.now() - 1000) });
    const res = await new Browser().get(link);
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('This link has expired.');
    expect(await row(owner.id)).toMatchObject({
      email: 'moved@example.test',
      owner_locked_at: null,
    });
    expect(await hasSession(browser)).toBe(true);
  });

  it('is in the password-changed notice, and locks the account and signs it out everywhere', async () => {
    const owner = await newUser();
    const elsewhere = new Browser();
    const before = await signIn(rp, elsewhere, server.url, owner);
    const attacker = new Browser();
    await signIn(rp, attacker, server.url, owner);
    const url = `${server.url}/account/password`;
    const csrf = hiddenInput(await (await attacker.get(url)).text(), 'csrf');
    const mailsBefore = smtp.messages.length;
    const changed = await attacker.post(url, {
      csrf,
      current: owner.password,
      password: NEW_PASSWORD,
      confirm: NEW_PASSWORD,
    });
    expect(await changed.text()).toContain('Your password was changed');
    const { link, mail } = await linkFromMail(smtp, owner.email, mailsBefore, SECURE_LINK);
    expect(mail.subject).toMatch(/password was changed/i);

    const done = await secure(link);
    expect(done.html).toContain('Your account is locked');
    expect(await hasSession(attacker)).toBe(false);
    expect(await refreshWorks(before)).toBe(false);
    await expect(
      signIn(rp, new Browser(), server.url, { ...owner, password: NEW_PASSWORD }),
    ).rejects.toThrow();
    expect((await row(owner.id)).owner_locked_at).not.toBeNull();
  });

  it('is in the notice of a second factor set up or removed, and locks and signs out', async () => {
    const owner = await newUser();
    const flow = new Flow(server, rp, owner);
    await flow.signIn();
    await flow.get('/account/mfa/totp');
    const mailsBefore = smtp.messages.length;
    const code = await codeAt(setupKey(flow.html));
    await flow.submit('/account/mfa/totp', { password: owner.password, code });
    const added = await linkFromMail(smtp, owner.email, mailsBefore, SECURE_LINK);
    expect(added.mail.subject).toMatch(/two-step verification .* changed/i);
    expect(added.mail.text).toContain('an authenticator app was set up');

    await flow.get('/account/mfa');
    const removedBefore = smtp.messages.length;
    await flow.submit('/account/mfa/totp/remove', { password: owner.password });
    const removed = await linkFromMail(smtp, owner.email, removedBefore, SECURE_LINK);
    expect(removed.mail.text).toContain('the authenticator app was removed');

    const done = await secure(added.link);
    expect(done.html).toContain('Your account is locked');
    expect(await hasSession(flow.browser)).toBe(false);
    expect((await row(owner.id)).owner_locked_at).not.toBeNull();
  });

  it('is in the new-device notice, and locks the account and signs it out everywhere', async () => {
    const owner = await newUser();
    await signIn(rp, new Browser({ userAgent: FIREFOX }), server.url, owner);
    const mailsBefore = smtp.messages.length;
    const stranger = new Browser({ userAgent: SAFARI });
    const theirs = await signIn(rp, stranger, server.url, owner);
    const { link, mail } = await linkFromMail(smtp, owner.email, mailsBefore, SECURE_LINK);
    expect(mail.subject).toMatch(/new sign-in/i);
    expect(recipients(mail)).toContain(owner.email);

    const done = await secure(link);
    expect(done.html).toContain('Your account is locked');
    expect(await hasSession(stranger)).toBe(false);
    expect(await refreshWorks(theirs)).toBe(false);
    await expect(signIn(rp, new Browser(), server.url, owner)).rejects.toThrow();
  });

  it('for a directory user: locks and signs out, and sends them to their directory and an admin instead of a reset', async () => {
    const owner = await newUser();
    await signIn(rp, new Browser({ userAgent: FIREFOX }), server.url, owner);
    const mailsBefore = smtp.messages.length;
    const stranger = new Browser({ userAgent: SAFARI });
    await signIn(rp, stranger, server.url, owner);
    const { link } = await linkFromMail(smtp, owner.email, mailsBefore, SECURE_LINK);
    // Linked to a directory entry, as a directory sign-in would (no directory needed here).
    await server
      .db('users')
      .where({ id: owner.id })
      .update({ source: 'ldap', directory_id: `uid=${owner.id},ou=people,dc=example,dc=test` });

    const done = await secure(link);
    expect(done.html).toContain('Your account is locked');
    expect(done.html).toContain('administrator');
    expect(done.html).not.toMatch(/\/reset\?token=/);
    expect(await hasSession(stranger)).toBe(false);
    expect((await row(owner.id)).owner_locked_at).not.toBeNull();
    await expect(signIn(rp, new Browser(), server.url, owner)).rejects.toThrow();

    // Once the directory password is changed, an admin lifts the lock.
    const out = await runCli(['users', 'unlock', '--email', owner.email], server.env);
    expect(out.code).toBe(0);
    expect((await row(owner.id)).owner_locked_at).toBeNull();
    await signIn(rp, new Browser(), server.url, owner);
  });
});
