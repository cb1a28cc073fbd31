import knexFactory, { type Knex } from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, formAction, hiddenInput } from '../support/browser.ts';
import { runCli } from '../support/cli.ts';
import { startMailApp, type MailApp } from '../support/mail-app.ts';
import { linkFromMail } from '../support/mailbox.ts';
import { authorizationRequest, signIn } from '../support/relying-party.ts';

const USER = { email: 'lucy.locked@example.test', password: 'the right long password 7' };
const WRONG = 'a wrong password of some length';
const INCORRECT = 'The email or password is incorrect.';

/** Opens a fresh login page of the app and posts one email and password to it. */
async function tryPassword(app: MailApp, password: string, email = USER.email) {
  const browser = new Browser();
  const { url } = await authorizationRequest(app.rp);
  const login = await browser.follow(await browser.get(url), app.server.url);
  const html = await login.res.text();
  return browser.post(new URL(formAction(html, '/login'), app.server.url), {
    csrf: hiddenInput(html, 'csrf'),
    email,
    password,
  });
}

/** The page without what differs from one request to the next (ids, tokens). */
const page = async (res: Response) =>
  (await res.text()).replace(/[\w-]{20,}/g, 'X').replace(/\/interaction\/[^/"]+/g, '/i');

describe('account lockout (PostgreSQL + Redis, real SMTP)', () => {
  let app: MailApp;
  let db: Knex;
  const auditRows = async () =>
    db('audit_events')
      .where({ subject: (await app.server.users.findByEmail(USER.email))!.id })
      .orderBy('id');

  beforeAll(async () => {
    app = await startMailApp({ clientName: 'Lockout app', user: { ...USER, name: 'Lucy' } });
    db = knexFactory({ client: 'pg', connection: app.server.env.DATABASE_URL });
  });
  afterAll(async () => {
    await db?.destroy();
    await app?.stop();
  });

  it('20 wrong passwords: locked after 5, same answer while locked, then the account limit; unlocked by the emailed link', async () => {
    const mailsBefore = app.smtp.messages.length;
    const answers: { status: number; html: string; retryAfter: string | null }[] = [];
    for (let i = 1; i <= 20; i++) {
      // The 6th attempt is the right password, made while the account is locked.
      const res = await tryPassword(app, i === 6 ? USER.password : WRONG);
      answers.push({
        status: res.status,
        retryAfter: res.headers.get('retry-after'),
        html: await page(res),
      });
    }
    // 1–10: the login form again with one message, locked or not, right password or not.
    for (const a of answers.slice(0, 10)) {
      expect(a.status).toBe(400);
      expect(a.html).toContain(INCORRECT);
      expect(a.html).toBe(answers[0]!.html);
    }
    // 11–20: the per-account limit (10 failures per 15 minutes) answers 429 with Retry-After.
    for (const a of answers.slice(10)) {
      expect(a.status).toBe(429);
      expect(Number(a.retryAfter)).toBeGreaterThan(0);
      expect(a.html).toContain('Too many attempts');
    }

    const user = (await app.server.users.findByEmail(USER.email))!;
    expect(new Date(user.locked_until!).getTime()).toBeGreaterThan(Date.now());
    const { mail, link } = await linkFromMail(
      app.smtp,
      USER.email,
      mailsBefore,
      /https?:\/\/\S+\/unlock\?token=[\w-]+/,
    );
    expect(mail.subject).toContain('locked');
    expect(app.smtp.messages.slice(mailsBefore)).toHaveLength(1); // one lock, one email

    // The link shows a button (mail scanners open links); the button unlocks.
    const browser = new Browser();
    const confirm = await browser.get(link);
    expect(confirm.status).toBe(200);
    const confirmHtml = await confirm.text();
    const done = await browser.post(new URL(formAction(confirmHtml, '/unlock'), app.server.url), {
      csrf: hiddenInput(confirmHtml, 'csrf'),
      token: hiddenInput(confirmHtml, 'token'),
    });
    expect(done.status).toBe(200);
    expect(await done.text()).toContain('Your account is unlocked');
    // The link works once.
    const again = await browser.get(link);
    expect(await again.text()).toContain('already used');

    const tokens = await signIn(app.rp, new Browser(), app.server.url, {
      ...USER,
      scope: 'openid email',
    });
    expect(tokens.claims()?.email).toBe(USER.email);

    // The token's event is told of once the token request was answered: it comes a little later.
    await expect
      .poll(async () => (await auditRows()).some((r) => r.type === 'token_issued'))
      .toBe(true);
    const rows = await auditRows();
    // Alike refusals share a row that counts them (a window may end mid-test: rows in a row
    // with the same label are added up).
    const steps: string[] = [];
    const counts: number[] = [];
    for (const r of rows) {
      const label =
        r.type === 'sign_in' ? `${r.outcome}:${r.detail.reason ?? r.detail.method}` : r.type;
      if (r.outcome === 'failure' && steps.at(-1) === label) {
        counts[counts.length - 1]! += r.count;
      } else {
        steps.push(label);
        counts.push(r.count);
      }
    }
    expect(steps.map((step, i) => `${step} ×${counts[i]}`)).toEqual([
      'failure:wrong_password ×5',
      'account_locked ×1',
      'failure:locked ×5',
      'failure:rate_limited ×10',
      'account_unlocked ×1',
      'success:password ×1',
      'consent_granted ×1',
      'token_issued ×1',
    ]);
    for (const row of rows) expect(JSON.stringify(row)).not.toContain(WRONG);
  });
});

describe('lock periods grow, and an admin unlocks from the CLI', () => {
  let app: MailApp;

  beforeAll(async () => {
    app = await startMailApp({
      clientName: 'Lockout periods',
      user: { ...USER, name: 'Lucy' },
      env: { LOCKOUT_THRESHOLD: '3', LOCKOUT_PERIODS: '2s,1h', RATE_LIMIT_LOGIN_ACCOUNT: 'off' },
    });
  });
  afterAll(() => app?.stop());

  const lockedFor = async () => {
    const user = (await app.server.users.findByEmail(USER.email))!;
    return user.locked_until ? (new Date(user.locked_until).getTime() - Date.now()) / 1000 : 0;
  };

  it('locks for the first period, then for the next one, and the CLI unlock lets the owner in', async () => {
    for (let i = 0; i < 3; i++) expect((await tryPassword(app, WRONG)).status).toBe(400);
    expect(await lockedFor()).toBeGreaterThan(0);
    expect(await lockedFor()).toBeLessThanOrEqual(2);
    await new Promise((r) => setTimeout(r, 2200));
    expect(await lockedFor()).toBeLessThanOrEqual(0);

    for (let i = 0; i < 3; i++) expect((await tryPassword(app, WRONG)).status).toBe(400);
    expect(await lockedFor()).toBeGreaterThan(3500);
    expect((await tryPassword(app, USER.password)).status).toBe(400);

    const out = await runCli(['users', 'unlock', '--email', USER.email], app.server.env);
    expect(out.code).toBe(0);
    expect(out.stdout).toContain('unlocked');
    expect(await lockedFor()).toBeLessThanOrEqual(0);
    const tokens = await signIn(app.rp, new Browser(), app.server.url, {
      ...USER,
      scope: 'openid',
    });
    expect(tokens.access_token).toBeTruthy();
  });
});
