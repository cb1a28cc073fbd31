import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, formAction, hiddenInput } from '../support/browser.ts';
import { startMailApp, type MailApp } from '../support/mail-app.ts';
import { recipients } from '../support/mailbox.ts';
import { authorizationRequest } from '../support/relying-party.ts';
import type { Storage } from '../support/server.ts';

const USER = { email: 'connie.current@example.test', password: 'the right long password 9' };
const WRONG = 'a wrong password of some length';
const BURST = 40;
// The defaults: 10 failures per account per 15 minutes, locked after 5.
const ACCOUNT_LIMIT = 10;

/** A fresh login page, ready to post one password to (each guess in its own browser). */
async function loginForm(app: MailApp) {
  const browser = new Browser();
  const { url } = await authorizationRequest(app.rp);
  const page = await browser.follow(await browser.get(url), app.server.url);
  const html = await page.res.text();
  const action = new URL(formAction(html, '/login'), app.server.url);
  const csrf = hiddenInput(html, 'csrf');
  return (password: string) => browser.post(action, { csrf, email: USER.email, password });
}

/** Counts the argon2 verifications of the app's own hasher, and the most at once. */
function observeVerifications(app: MailApp) {
  const hasher = app.server.passwords;
  const verify = hasher.verify.bind(hasher);
  const seen = { total: 0, inFlight: 0, maxInFlight: 0 };
  hasher.verify = async (...args) => {
    seen.total++;
    seen.maxInFlight = Math.max(seen.maxInFlight, ++seen.inFlight);
    try {
      return await verify(...args);
    } finally {
      seen.inFlight--;
    }
  };
  return seen;
}

const lockMails = (app: MailApp) =>
  app.smtp.messages.filter(
    (m) => recipients(m).includes(USER.email) && /locked/i.test(m.subject ?? ''),
  );

// The per-process cap on attempts in flight is raised here, as when many processes share the
// counters: what is checked is that the shared counters and the lock alone hold.
describe.each<Storage>(['postgres+redis', 'embedded'])(
  'concurrent guesses at one account (%s counters)',
  (storage) => {
    let app: MailApp;

    beforeAll(async () => {
      app = await startMailApp({
        storage,
        clientName: 'Burst app',
        user: USER,
        env: { LOGIN_IN_FLIGHT_ACCOUNT: '100', LOGIN_IN_FLIGHT_IP: '100' },
      });
    });
    afterAll(() => app?.stop());

    it('a burst of wrong guesses and the right password: at most the account limit is verified, the rest refused, one lock email', async () => {
      const forms = await Promise.all(Array.from({ length: BURST + 1 }, () => loginForm(app)));
      const seen = observeVerifications(app);
      const wrong = forms.slice(0, BURST).map((post) => post(WRONG));
      // The right password while the burst is still being answered.
      await new Promise((r) => setTimeout(r, 30));
      const right = await forms[BURST]!(USER.password);
      const answers = await Promise.all(wrong);

      expect(seen.total).toBeLessThanOrEqual(ACCOUNT_LIMIT);
      const statuses = answers.map((a) => a.status);
      expect(statuses.filter((s) => s === 400).length).toBeLessThanOrEqual(ACCOUNT_LIMIT);
      expect(statuses.filter((s) => s !== 400 && s !== 429)).toEqual([]);
      // The right password arrived after the lock: it did not sign in.
      expect([400, 429]).toContain(right.status);

      const user = (await app.server.users.findByEmail(USER.email))!;
      expect(new Date(user.locked_until!).getTime()).toBeGreaterThan(Date.now());
      await app.smtp.waitForMessage((m) => lockMails(app).includes(m));
      await new Promise((r) => setTimeout(r, 1000));
      expect(lockMails(app)).toHaveLength(1);
    });
  },
);

describe('attempts in flight per account are capped in each process', () => {
  let app: MailApp;

  beforeAll(async () => {
    app = await startMailApp({ clientName: 'Cap app', user: USER });
  });
  afterAll(() => app?.stop());

  it('a burst has at most 2 guesses at one account checked at once; the rest are refused with 429, not queued', async () => {
    const forms = await Promise.all(Array.from({ length: BURST }, () => loginForm(app)));
    const seen = observeVerifications(app);
    const answers = await Promise.all(forms.map((post) => post(WRONG)));
    expect(seen.maxInFlight).toBeLessThanOrEqual(2);
    expect(seen.total).toBeLessThanOrEqual(ACCOUNT_LIMIT);
    const refused = answers.filter((a) => a.status === 429);
    expect(refused.length).toBeGreaterThanOrEqual(BURST - ACCOUNT_LIMIT);
    for (const a of refused) expect(Number(a.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(answers.filter((a) => a.status !== 400 && a.status !== 429)).toEqual([]);
  });
});

describe('the account-locked email goes out in the background', () => {
  let app: MailApp;

  beforeAll(async () => {
    app = await startMailApp({ clientName: 'Slow mail app', user: USER });
  });
  afterAll(() => app?.stop());

  it('the fifth failure is answered while the mail server is down, and the email still arrives once it is back', async () => {
    for (let i = 0; i < 4; i++) expect((await (await loginForm(app))(WRONG)).status).toBe(400);
    const fifth = await loginForm(app);
    await app.smtp.stop();
    const answer = await fifth(WRONG);
    expect(answer.status).toBe(400);
    expect(lockMails(app)).toHaveLength(0);
    await app.smtp.start();
    const mail = await app.smtp.waitForMessage((m) => lockMails(app).includes(m), 15_000);
    expect(mail.text).toMatch(/\/unlock\?token=/);
  });
});
