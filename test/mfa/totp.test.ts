import knexFactory, { type Knex } from 'knex';
import * as oidc from 'openid-client';
import { generate } from 'otplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, formAction, hiddenInput } from '../support/browser.ts';
import { runCli } from '../support/cli.ts';
import { authorizationRequest, REDIRECT_URI, relyingParty } from '../support/relying-party.ts';
import { startTestServer, storageEnv, type TestServer } from '../support/server.ts';

const USER = { email: 'mia.mfa@example.test', password: 'mia uses a long passphrase' };
const MFA = 'urn:latchkey:acr:mfa';

/** The authenticator app's code for `secret`, `offset` seconds from now. */
const codeAt = (secret: string, offset = 0) =>
  generate({ secret, epoch: Math.floor(Date.now() / 1000) + offset });

/** The setup key shown on the enrolment page, without its spaces. */
const setupKey = (html: string) =>
  /aria-label="Setup key">([A-Z2-7 ]+)</.exec(html)![1]!.replace(/ /g, '');

const recoveryCodes = (html: string) =>
  [...html.matchAll(/<code>([0-9A-Z]{5}-[0-9A-Z]{5})<\/code>/g)].map((m) => m[1]!);

class Flow {
  readonly browser = new Browser();
  html = '';
  url!: URL;
  status = 0;
  private request!: Awaited<ReturnType<typeof authorizationRequest>>;

  private readonly server: TestServer;
  private readonly rp: oidc.Configuration;

  constructor(server: TestServer, rp: oidc.Configuration) {
    this.server = server;
    this.rp = rp;
  }

  private async land(res: Response) {
    const { res: page, url } = await this.browser.follow(res, this.server.url);
    this.url = url;
    this.status = page.status;
    this.html = url.origin === this.server.url ? await page.text() : '';
  }

  async start(params: Record<string, string> = {}) {
    this.request = await authorizationRequest(this.rp, { scope: 'openid email', ...params });
    await this.land(await this.browser.get(this.request.url));
  }

  async get(path: string) {
    await this.land(await this.browser.get(new URL(path, this.server.url)));
  }

  /** Posts the form whose action contains `action`, with its CSRF token and `fields`. */
  async submit(action: string, fields: Record<string, string> = {}) {
    const target = new URL(formAction(this.html, action), this.server.url);
    await this.land(
      await this.browser.post(target, { csrf: hiddenInput(this.html, 'csrf'), ...fields }),
    );
  }

  async login(password = USER.password) {
    await this.submit('/login', { email: USER.email, password });
  }

  /** Consents if asked, then redeems the code at the relying party. */
  async tokens() {
    if (this.html.includes('/consent')) await this.submit('/consent');
    expect(this.url.href.startsWith(REDIRECT_URI)).toBe(true);
    return oidc.authorizationCodeGrant(this.rp, this.url, {
      pkceCodeVerifier: this.request.verifier,
      expectedState: this.request.state,
    });
  }
}

async function setup(env: Record<string, string>) {
  const server = await startTestServer({ ...(await storageEnv('postgres+redis')), ...env });
  await server.users.create({ ...USER, emailVerified: true });
  const client = await server.clients.create({ name: 'MFA app', redirectUris: [REDIRECT_URI] });
  const rp = await relyingParty(server.url, client.clientId, client.clientSecret);
  const db = knexFactory({ client: 'pg', connection: server.env.DATABASE_URL });
  return { server, rp, db };
}

describe('authenticator app required by policy', () => {
  let server: TestServer;
  let rp: oidc.Configuration;
  let db: Knex;
  let secret = '';
  let codes: string[] = [];

  beforeAll(async () => {
    ({ server, rp, db } = await setup({ MFA_POLICY: 'required' }));
  });
  afterAll(async () => {
    await db?.destroy();
    await server?.cleanup();
  });

  it('enrols at the first sign-in: QR and key, a first code, ten recovery codes shown once', async () => {
    const flow = new Flow(server, rp);
    await flow.start();
    await flow.login();
    expect(flow.html).toContain('Set up two-step verification');
    expect(flow.html).toContain('<svg');
    secret = setupKey(flow.html);

    await flow.submit('/mfa/enrol', {
      code: '123456' === (await codeAt(secret)) ? '654321' : '123456',
    });
    expect(flow.status).toBe(400);
    expect(flow.html).toContain('That code is not right');
    expect(setupKey(flow.html)).toBe(secret); // the same key again, not a new one

    await flow.submit('/mfa/enrol', { code: await codeAt(secret) });
    codes = recoveryCodes(flow.html);
    expect(codes).toHaveLength(10);
    expect(new Set(codes).size).toBe(10);
    await flow.submit('/mfa/continue');
    const claims = (await flow.tokens()).claims()!;
    expect(claims.acr).toBe(MFA);
    expect(claims.amr).toEqual(expect.arrayContaining(['pwd', 'otp', 'mfa']));

    const stored = await db('recovery_codes').select('code_hash');
    for (const code of codes) expect(JSON.stringify(stored)).not.toContain(code);
    const seed = await db('totp_factors').first();
    expect(seed.secret_sealed).toMatch(/^v2\./);
    expect(seed.secret_sealed).not.toContain(secret);
  });

  it('asks for the code after the password: a wrong, a stale and a reused code are refused', async () => {
    const flow = new Flow(server, rp);
    await flow.start();
    await flow.login();
    expect(flow.html).toContain('Enter the 6-digit code');
    const next = await codeAt(secret, 30); // the next time step: not used before

    for (const wrong of ['000000', await codeAt(secret, -120), 'abcdef']) {
      if (wrong === next) continue;
      await flow.submit('/mfa/totp', { code: wrong });
      expect(flow.status).toBe(400);
      expect(flow.html).toContain('That code is not right');
    }
    await flow.submit('/mfa/totp', { code: next });
    expect((await flow.tokens()).claims()!.acr).toBe(MFA);

    // The same code in another browser: refused, it was used.
    const replay = new Flow(server, rp);
    await replay.start();
    await replay.login();
    await replay.submit('/mfa/totp', { code: next });
    expect(replay.status).toBe(400);

    const failures = await db('audit_events')
      .where({ type: 'sign_in', outcome: 'failure' })
      .select('detail');
    expect(failures.filter((f) => f.detail.reason === 'wrong_totp').length).toBeGreaterThanOrEqual(
      3,
    );
  });

  it('signs in with a recovery code once; the same code a second time is refused', async () => {
    const flow = new Flow(server, rp);
    await flow.start();
    await flow.login();
    await flow.get(`${flow.url.pathname}?method=recovery`);
    expect(flow.html).toContain('Recovery code');
    await flow.submit('/mfa/recovery', { code: codes[0]!.toLowerCase().replace('-', ' ') });
    expect((await flow.tokens()).claims()!.amr).toEqual(expect.arrayContaining(['pwd', 'otp']));

    const again = new Flow(server, rp);
    await again.start();
    await again.login();
    await again.get(`${again.url.pathname}?method=recovery`);
    await again.submit('/mfa/recovery', { code: codes[0]! });
    expect(again.status).toBe(400);
    expect(again.html).toContain('already used');

    const used = await db('audit_events').where({ type: 'recovery_code_used' });
    expect(used).toHaveLength(1);
    expect(used[0].detail.left).toBe(9);
  });

  it('lets an admin reset the factors from the CLI: the next sign-in enrols again', async () => {
    const out = await runCli(['users', 'reset-mfa', '--email', USER.email], server.env);
    expect(out.code).toBe(0);
    expect(await db('recovery_codes').count({ n: '*' }).first()).toEqual({ n: '0' });
    const flow = new Flow(server, rp);
    await flow.start();
    await flow.login();
    expect(flow.html).toContain('Set up two-step verification');
    expect(setupKey(flow.html)).not.toBe(secret);
    expect(await db('audit_events').where({ type: 'mfa_reset', actor_type: 'admin' })).toHaveLength(
      1,
    );
  });
});

describe('step-up with acr_values in a password-only session', () => {
  let server: TestServer;
  let rp: oidc.Configuration;
  let db: Knex;

  beforeAll(async () => {
    ({ server, rp, db } = await setup({}));
  });
  afterAll(async () => {
    await db?.destroy();
    await server?.cleanup();
  });

  it('asks only for the second factor, and the ID token says so in acr and amr', async () => {
    const flow = new Flow(server, rp);
    await flow.start();
    await flow.login();
    const first = (await flow.tokens()).claims()!;
    expect(first.acr).toBe('urn:latchkey:acr:pwd');
    expect(first.amr).toEqual(['pwd']);

    // Enrolled from the account page, in the same browser: the password is asked again there.
    await flow.get('/account/mfa/totp');
    const secret = setupKey(flow.html);
    await flow.submit('/account/mfa/totp', { password: 'wrong', code: await codeAt(secret) });
    expect(flow.html).toContain('Your current password is not right.');
    await flow.submit('/account/mfa/totp', { password: USER.password, code: await codeAt(secret) });
    expect(recoveryCodes(flow.html)).toHaveLength(10);

    await flow.start({ acr_values: MFA });
    expect(flow.html).not.toContain('name="password"');
    expect(flow.html).toContain('Enter the 6-digit code');
    await flow.submit('/mfa/totp', { code: await codeAt(secret, 30) });
    const stepped = (await flow.tokens()).claims()!;
    expect(stepped.acr).toBe(MFA);
    expect(stepped.amr).toEqual(expect.arrayContaining(['pwd', 'otp', 'mfa']));
    expect(stepped.sub).toBe(first.sub);

    const discovery = (await (
      await fetch(`${server.url}/.well-known/openid-configuration`)
    ).json()) as { acr_values_supported: string[] };
    expect(discovery.acr_values_supported).toEqual(['urn:latchkey:acr:pwd', MFA]);
    expect(await db('audit_events').where({ type: 'mfa_enrolled' })).toHaveLength(1);
  });
});

describe('MFA_POLICY=off', () => {
  let server: TestServer;
  let rp: oidc.Configuration;
  let db: Knex;

  beforeAll(async () => {
    ({ server, rp, db } = await setup({ MFA_POLICY: 'off' }));
  });
  afterAll(async () => {
    await db?.destroy();
    await server?.cleanup();
  });

  it('has no settings pages, and asks for no second factor even of a user who has one', async () => {
    const flow = new Flow(server, rp);
    await flow.start();
    await flow.login();
    await flow.get('/account/mfa');
    expect(flow.status).toBe(404);
    const user = (await server.users.findByEmail(USER.email))!;
    await db('totp_factors').insert({
      user_id: user.id,
      secret_sealed: 'v1.unused.unused.unused',
      confirmed_at: new Date(),
    });
    const again = new Flow(server, rp);
    await again.start();
    await again.login();
    expect((await again.tokens()).claims()!.acr).toBe('urn:latchkey:acr:pwd');
  });
});

describe('the second factor cannot be skipped, replaced or guessed around the lockout', () => {
  let server: TestServer;
  let rp: oidc.Configuration;
  let db: Knex;
  let secret = '';

  beforeAll(async () => {
    ({ server, rp, db } = await setup({ MFA_POLICY: 'required', RATE_LIMIT_LOGIN_ACCOUNT: 'off' }));
    const flow = new Flow(server, rp);
    await flow.start();
    await flow.login();
    secret = setupKey(flow.html);
    await flow.submit('/mfa/enrol', { code: await codeAt(secret) });
    await flow.submit('/mfa/continue');
    await flow.tokens();
  });
  afterAll(async () => {
    await db?.destroy();
    await server?.cleanup();
  });

  it('refuses enrolment in the sign-in of a user who has a factor: no new key, no way to continue', async () => {
    const flow = new Flow(server, rp);
    await flow.start();
    await flow.login();
    // The code page's own token, posted to the steps that only a user without a factor may take.
    const csrf = hiddenInput(flow.html, 'csrf');
    const at = (step: string) => new URL(`${flow.url.pathname}/mfa/${step}`, server.url);
    const enrol = await flow.browser.post(at('enrol'), { csrf, code: '000000' });
    expect(enrol.status).toBe(400);
    expect(await enrol.text()).not.toContain('Setup key');
    expect((await flow.browser.post(at('continue'), { csrf })).status).toBe(403);
    expect((await db('totp_factors').first()).confirmed_at).not.toBeNull();
  });

  it('keeps the app on when the account page is posted with a wrong password', async () => {
    const flow = new Flow(server, rp);
    await flow.start();
    await flow.login();
    await flow.submit('/mfa/totp', { code: await codeAt(secret, 30) });
    await flow.tokens();
    await flow.get('/account/mfa');
    // Each current-password field names its account, so password managers offer the right one.
    const passwords = flow.html.match(/autocomplete="current-password"/g) ?? [];
    const usernames =
      flow.html.match(
        new RegExp(`name="username" value="${USER.email}" autocomplete="username" hidden`, 'g'),
      ) ?? [];
    expect(passwords.length).toBeGreaterThan(0);
    expect(usernames).toHaveLength(passwords.length);
    const csrf = hiddenInput(flow.html, 'csrf');
    const res = await flow.browser.post(`${server.url}/account/mfa/totp`, { csrf, password: 'x' });
    expect(res.status).toBe(302);
    expect((await db('totp_factors').first()).confirmed_at).not.toBeNull();
  });

  it('counts wrong codes across fresh password sign-ins, and a locked account takes no more', async () => {
    for (let round = 0; round < 2; round++) {
      const flow = new Flow(server, rp);
      await flow.start();
      await flow.login();
      for (let i = 0; i < 3; i++) await flow.submit('/mfa/totp', { code: '000000' });
    }
    const user = (await server.users.findByEmail(USER.email))!;
    expect(user.lockouts).toBe(1);
    const flow = new Flow(server, rp);
    await flow.start();
    await flow.login(); // locked: refused like a wrong password
    expect(flow.html).toContain('The email or password is incorrect.');
  });
});
