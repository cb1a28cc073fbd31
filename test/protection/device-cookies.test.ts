import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, formAction, hiddenInput } from '../support/browser.ts';
import { recipients } from '../support/mailbox.ts';
import { startMailApp, type MailApp } from '../support/mail-app.ts';
import { codeAt, Flow } from '../support/flow.ts';
import { authorizationRequest, REDIRECT_URI, signIn } from '../support/relying-party.ts';

const OWNER = { email: 'olga.owner@example.test', password: 'olga has a long password' };
const OTHER = { email: 'otto.other@example.test', password: 'otto has a long password' };
const WRONG = 'a wrong password of some length';
const ACCOUNT_LIMIT = 10;

/** Posts one password through a fresh login page in `browser` (prompt=login: a session or not). */
async function tryPassword(app: MailApp, browser: Browser, email: string, password: string) {
  const { url } = await authorizationRequest(app.rp, { prompt: 'login' });
  const page = await browser.follow(await browser.get(url), app.server.url);
  const html = await page.res.text();
  return browser.post(new URL(formAction(html, '/login'), app.server.url), {
    csrf: hiddenInput(html, 'csrf'),
    email,
    password,
  });
}

/** A full sign-in (login, consent, code exchange) in `browser`. */
const signInAs = (app: MailApp, browser: Browser, user: typeof OWNER) =>
  signIn(app.rp, browser, app.server.url, {
    ...user,
    scope: 'openid email',
    params: { prompt: 'login consent' },
  });

describe("device cookies: attackers elsewhere cannot keep the owner's known browser out", () => {
  let app: MailApp;

  beforeAll(async () => {
    app = await startMailApp({ clientName: 'Device app', user: OWNER });
    await app.server.users.create({ ...OTHER, emailVerified: true });
  });
  afterAll(() => app?.stop());

  it("an attacker's failures lock out untrusted browsers, yet the owner's browser signs in; its own failures are limited too", async () => {
    const owners = new Browser();
    await signInAs(app, owners, OWNER); // this browser is now known for Olga's account

    // Attackers, each from a new browser: locked after 5, refused after the account limit.
    const attack = [];
    for (let i = 0; i < ACCOUNT_LIMIT + 2; i++)
      attack.push((await tryPassword(app, new Browser(), OWNER.email, WRONG)).status);
    expect(attack.slice(0, ACCOUNT_LIMIT)).toEqual(Array(ACCOUNT_LIMIT).fill(400));
    expect(attack.slice(ACCOUNT_LIMIT)).toEqual([429, 429]);
    const locked = (await app.server.users.findByEmail(OWNER.email))!;
    expect(new Date(locked.locked_until!).getTime()).toBeGreaterThan(Date.now());

    // An untrusted browser with the right password is refused like the attackers.
    expect((await tryPassword(app, new Browser(), OWNER.email, OWNER.password)).status).toBe(429);
    // The owner's known browser gets in.
    const tokens = await signInAs(app, owners, OWNER);
    expect(tokens.claims()?.email).toBe(OWNER.email);

    // The device cookie vouches for its own account only: it does not lift another's limit.
    for (let i = 0; i < ACCOUNT_LIMIT; i++)
      expect((await tryPassword(app, new Browser(), OTHER.email, WRONG)).status).toBe(400);
    const otherFromOwners = await tryPassword(app, owners, OTHER.email, OTHER.password);
    expect(otherFromOwners.status).toBe(429);

    // A known browser's own wrong passwords are limited as well (a stolen cookie is no key).
    const fromDevice = [];
    for (let i = 0; i < ACCOUNT_LIMIT; i++)
      fromDevice.push((await tryPassword(app, owners, OWNER.email, WRONG)).status);
    expect(fromDevice).toEqual(Array(ACCOUNT_LIMIT).fill(400));
    const refused = await tryPassword(app, owners, OWNER.email, OWNER.password);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('takes a known browser past its own limit for a stranger: its failures lock the account and tell the owner', async () => {
    const third = { email: 'thea.third@example.test', password: 'thea has a long password' };
    await app.server.users.create({ ...third, emailVerified: true });
    const known = new Browser();
    await signInAs(app, known, third);
    const before = app.smtp.messages.length;
    const statuses = [];
    // RATE_LIMIT_LOGIN_DEVICE (10), then LOCKOUT_THRESHOLD (5) as anyone else's.
    for (let i = 0; i < ACCOUNT_LIMIT + 5; i++)
      statuses.push((await tryPassword(app, known, third.email, WRONG)).status);
    expect(statuses).toEqual(Array(ACCOUNT_LIMIT + 5).fill(400));
    const user = (await app.server.users.findByEmail(third.email))!;
    expect(new Date(user.locked_until!).getTime()).toBeGreaterThan(Date.now());
    await app.smtp.waitForMessage(
      (m) =>
        app.smtp.messages.indexOf(m) >= before &&
        recipients(m).includes(third.email) &&
        /locked/i.test(m.subject ?? ''),
      10_000,
    );
  });
});

describe('device cookies and a second factor', () => {
  let app: MailApp;

  beforeAll(async () => {
    app = await startMailApp({ clientName: 'Device app' });
  });
  afterAll(() => app?.stop());

  it("lets the owner's known browser through the second factor too, whatever others' guesses locked", async () => {
    const mona = { email: 'mona.mfa@example.test', password: 'mona has a long password' };
    await app.server.users.create({ ...mona, emailVerified: true });
    const flow = new Flow(app.server, app.rp, mona);
    await flow.signIn();
    const { secret } = await flow.enrolAuthenticator();
    // A full sign-in with the code from this browser: it is known to the account now.
    const withCode = async () => {
      await flow.start({ prompt: 'login' });
      await flow.login();
      await app.server.db('totp_factors').update({ last_step: 0 }); // codes above count as old
      await flow.submit('/mfa/totp', { code: await codeAt(secret) });
      expect(flow.url.href.startsWith(REDIRECT_URI)).toBe(true);
    };
    await withCode();
    for (let i = 0; i < 5; i++)
      expect((await tryPassword(app, new Browser(), mona.email, WRONG)).status).toBe(400);
    const locked = (await app.server.users.findByEmail(mona.email))!;
    expect(new Date(locked.locked_until!).getTime()).toBeGreaterThan(Date.now());
    await withCode();
  });
});
