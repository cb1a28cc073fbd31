import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resetLink } from '../../server/users/reset-link.ts';
import { Browser, formAction, hiddenInput } from '../support/browser.ts';
import {
  authorizationRequest,
  tokenRequest,
  type ClientCredentials,
  REDIRECT_URI,
  relyingParty,
  signIn,
  silentAuthorizationUrl,
} from '../support/relying-party.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { startPostgres, startRedis, type RestartableService } from '../support/services.ts';

const USER = { email: 'outage@example.test', password: 'a long enough password' };
const TIMEOUT_MS = 1000;
// What "answers within a bounded time" allows: the dependency timeout and the work around it.
// ioredis and pg waited 15-30 s before this bound existed.
const ANSWER_BOUND_MS = TIMEOUT_MS * 4;

describe('when PostgreSQL or Redis goes down', () => {
  let postgres: RestartableService;
  let redis: RestartableService;
  let server: TestServer;
  let app: { clientId: string; clientSecret: string };
  let job: { clientId: string; clientSecret: string };
  const token = (client: ClientCredentials, params: Record<string, string>, path?: string) =>
    tokenRequest(server.url, client, params, { path });

  const refresh = (refreshToken: string, path?: string) =>
    token(app, { grant_type: 'refresh_token', refresh_token: refreshToken }, path);

  /** Signs in a browser of its own (the given one, or a new one); the refresh token it gets. */
  async function newRefreshToken(browser = new Browser()): Promise<string> {
    const rp = await relyingParty(server.url, app.clientId, app.clientSecret);
    return (await signIn(rp, browser, server.url, USER)).refresh_token!;
  }

  async function readyWithin(ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if ((await fetch(`${server.url}/readyz`)).status === 200) return true;
      await new Promise((r) => setTimeout(r, 100));
    }
    return false;
  }

  beforeAll(async () => {
    [postgres, redis] = await Promise.all([startPostgres(), startRedis({ appendonly: true })]);
    server = await startTestServer({
      DATA_DIR: mkdtempSync(join(tmpdir(), 'latchkey-data-')),
      DATABASE_URL: postgres.url,
      REDIS_URL: redis.url,
      DEPENDENCY_TIMEOUT_MS: String(TIMEOUT_MS),
      // No grace for a reused refresh token: a retry must work because nothing was spent.
      REFRESH_REUSE_GRACE_SECONDS: '0',
    });
    await server.users.create({ ...USER, emailVerified: true });
    const created = await server.clients.create({ name: 'App', redirectUris: [REDIRECT_URI] });
    app = { clientId: created.clientId, clientSecret: created.clientSecret! };
    const machine = await server.clients.create({
      name: 'Job',
      redirectUris: [],
      grantTypes: ['client_credentials'],
    });
    job = { clientId: machine.clientId, clientSecret: machine.clientSecret! };
  });
  afterAll(async () => {
    await server?.cleanup();
    await Promise.all([postgres?.stop(), redis?.stop()]);
  });

  it('a refresh tried while Redis is down fails fast with temporarily_unavailable, and the same refresh token works after', async () => {
    const refreshToken = await newRefreshToken();
    await redis.down();
    try {
      const during = await refresh(refreshToken);
      expect(during.status).toBe(503);
      expect(during.body.error).toBe('temporarily_unavailable');
      expect(during.ms).toBeLessThan(ANSWER_BOUND_MS);

      const machine = await token(job, { grant_type: 'client_credentials' });
      expect(machine).toMatchObject({ status: 503, body: { error: 'temporarily_unavailable' } });
      expect(machine.ms).toBeLessThan(ANSWER_BOUND_MS);
    } finally {
      await redis.up();
    }
    expect(await readyWithin(3000)).toBe(true);
    const after = await refresh(refreshToken);
    expect(after.status).toBe(200);
    expect(after.body.refresh_token).toBeTruthy();
    // And the rotation went on as usual: the new token works, the old one is now spent.
    expect((await refresh(after.body.refresh_token as string)).status).toBe(200);
  });

  it('a refresh sent to the token endpoint spelled otherwise (/Token/) is just as safe during a Redis outage', async () => {
    const refreshToken = await newRefreshToken();
    await redis.down();
    try {
      const during = await refresh(refreshToken, '/Token/');
      expect(during.status).toBe(503);
      expect(during.body.error).toBe('temporarily_unavailable');
    } finally {
      await redis.up();
    }
    expect(await readyWithin(3000)).toBe(true);
    const after = await refresh(refreshToken);
    expect(after.body.error).toBeUndefined();
    expect(after.status).toBe(200);
  });

  it('a refresh tried while PostgreSQL is down fails fast with temporarily_unavailable, and the same refresh token works after', async () => {
    const refreshToken = await newRefreshToken();
    await postgres.down();
    try {
      const during = await refresh(refreshToken);
      expect(during.status).toBe(503);
      expect(during.body.error).toBe('temporarily_unavailable');
      expect(during.ms).toBeLessThan(ANSWER_BOUND_MS);
    } finally {
      await postgres.up();
    }
    expect(await readyWithin(3000)).toBe(true);
    expect((await refresh(refreshToken)).status).toBe(200);
  });

  it('an authorization request during a Redis outage goes back to the app with temporarily_unavailable (RFC 6749 §4.1.2.1)', async () => {
    const rp = await relyingParty(server.url, app.clientId, app.clientSecret);
    const browser = new Browser();
    await newRefreshToken(browser);
    await redis.down();
    try {
      const res = await browser.get(await silentAuthorizationUrl(rp));
      expect(res.status).toBe(303);
      const back = new URL(res.headers.get('location')!);
      expect(back.href.startsWith(REDIRECT_URI)).toBe(true);
      expect(back.searchParams.get('error')).toBe('temporarily_unavailable');
    } finally {
      await redis.up();
    }
    expect(await readyWithin(3000)).toBe(true);
  });

  it('a login form sent while Redis is down comes back filled in (never the password), and goes through once Redis is back', async () => {
    const rp = await relyingParty(server.url, app.clientId, app.clientSecret);
    const browser = new Browser();
    const { url } = await authorizationRequest(rp, { scope: 'openid' });
    const { res: loginPage, url: at } = await browser.follow(await browser.get(url), server.url);
    const html = await loginPage.text();
    await redis.down();
    let outage: string;
    try {
      const res = await browser.post(new URL(formAction(html, '/login'), server.url), {
        csrf: hiddenInput(html, 'csrf'),
        email: USER.email,
        password: USER.password,
      });
      expect(res.status).toBe(503);
      outage = await res.text();
    } finally {
      await redis.up();
    }
    expect(outage).toContain(`value="${USER.email}"`);
    expect(outage).not.toContain(USER.password);
    expect(await readyWithin(3000)).toBe(true);

    // "Back to the form": the login page again, the address filled in, nothing done yet.
    const fields = Object.fromEntries(
      [...outage.matchAll(/name="([^"]+)" value="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]),
    );
    const again = await browser.post(new URL(formAction(outage, '/login'), server.url), fields);
    const page = await again.text();
    expect(again.status).toBe(400);
    expect(page).toContain('name="password"');
    expect(page).toContain(`value="${USER.email}"`);
    expect(page).toMatch(/nothing was changed/i);
    expect(at.pathname).toMatch(/^\/interaction\//);
    const done = await browser.follow(
      await browser.post(new URL(formAction(page, '/login'), server.url), {
        csrf: hiddenInput(page, 'csrf'),
        email: USER.email,
        password: USER.password,
      }),
      server.url,
    );
    expect(done.url.pathname).not.toMatch(/\/login$/);
    expect(await done.res.text()).not.toContain('name="password"');
  });

  it('a password reset sent while Redis is down is done and says so; the sessions and refresh tokens from before no longer work', async () => {
    const owner = { email: 'resetting@example.test', password: 'the password before the reset' };
    const user = await server.users.create({ ...owner, emailVerified: true });
    const rp = await relyingParty(server.url, app.clientId, app.clientSecret);
    const elsewhere = new Browser();
    const before = await signIn(rp, elsewhere, server.url, owner);
    // Sign-ins count in whole seconds, and one in the second of the reset stands (sign-out.ts).
    await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 10));
    const browser = new Browser();
    const html = await (await browser.get(await resetLink(server, user))).text();
    const newPassword = 'quartz lantern umbrella 42 meadow';
    await redis.down();
    let answer: { status: number; html: string; ms: number };
    try {
      const started = Date.now();
      const res = await browser.post(new URL(formAction(html, '/reset'), server.url), {
        csrf: hiddenInput(html, 'csrf'),
        token: hiddenInput(html, 'token'),
        password: newPassword,
        confirm: newPassword,
      });
      answer = { status: res.status, html: await res.text(), ms: Date.now() - started };
    } finally {
      await redis.up();
    }
    // What is left to delete in Redis cannot undo the change, nor make it look failed.
    expect(answer.status).toBe(200);
    expect(answer.html).toContain('Your password was changed');
    expect(answer.ms).toBeLessThan(ANSWER_BOUND_MS);
    expect(await server.users.authenticate(owner.email, newPassword)).toBeDefined();
    expect(await readyWithin(3000)).toBe(true);
    const silent = await elsewhere.follow(
      await elsewhere.get(await silentAuthorizationUrl(rp)),
      server.url,
    );
    expect(silent.url.searchParams.get('error')).toBe('login_required');
    expect((await refresh(before.refresh_token!)).body.error).toBe('invalid_grant');
  });

  it('a hosted page answers 503 "try again shortly" while Redis is down, and a signed-in browser is still signed in after', async () => {
    const rp = await relyingParty(server.url, app.clientId, app.clientSecret);
    const browser = new Browser();
    await newRefreshToken(browser);
    await redis.down();
    try {
      const started = Date.now();
      const res = await browser.get(new URL('/account/password', server.url));
      const html = await res.text();
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBeTruthy();
      expect(html).toMatch(/try again/i);
      expect(html).not.toMatch(/unexpected error|stack|at .*\.ts:\d+/i);
      expect(Date.now() - started).toBeLessThan(ANSWER_BOUND_MS);
    } finally {
      await redis.up();
    }
    expect(await readyWithin(3000)).toBe(true);
    // The session from before the outage still stands: prompt=none gets a code.
    const { url } = await browser.follow(
      await browser.get(await silentAuthorizationUrl(rp)),
      server.url,
    );
    expect(url.searchParams.get('error')).toBeNull();
    expect(url.searchParams.get('code')).toBeTruthy();
  });
});
