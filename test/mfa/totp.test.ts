import knexFactory, { type Knex } from 'knex';
import type * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hiddenInput } from '../support/browser.ts';
import { runCli } from '../support/cli.ts';
import { codeAt, recoveryCodes, setupKey, Flow as SignInFlow } from '../support/flow.ts';
import { REDIRECT_URI, relyingParty } from '../support/relying-party.ts';
import { startTestServer, storageEnv, type TestServer } from '../support/server.ts';

const USER = { email: 'mia.mfa@example.test', password: 'mia uses a long passphrase' };
const MFA = 'urn:latchkey:acr:mfa';

class Flow extends SignInFlow {
  constructor(server: TestServer, rp: oidc.Configuration) {
    super(server, rp, USER);
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

    // Alike refusals share a row that counts them.
    const failures = await db('audit_events')
      .where({ type: 'sign_in', outcome: 'failure' })
      .select('detail', 'count');
    const wrong = failures.filter((f) => f.detail.reason === 'wrong_totp');
    expect(wrong.reduce((sum, f) => sum + Number(f.count), 0)).toBeGreaterThanOrEqual(3);
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

    // Enrolled from the account page in another browser (in this one, the first code shown
    // would count as this session's second factor): the password is asked again there.
    const other = new Flow(server, rp);
    await other.start();
    await other.login();
    await other.tokens();
    await other.get('/account/mfa/totp');
    const secret = setupKey(other.html);
    await other.submit('/account/mfa/totp', { password: 'wrong', code: await codeAt(secret) });
    expect(other.html).toContain('Your current password is not right.');
    await other.submit('/account/mfa/totp', {
      password: USER.password,
      code: await codeAt(secret),
    });
    expect(recoveryCodes(other.html)).toHaveLength(10);

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

  it('counts wrong codes from a browser the account knows too: the right password got it there', async () => {
    await db('users')
      .where({ email: USER.email })
      .update({ failed_sign_ins: 0, lockouts: 0, locked_until: null });
    await db('totp_factors').update({ last_step: 0 }); // as if the codes used above were older
    const flow = new Flow(server, rp);
    await flow.start();
    await flow.login();
    await flow.submit('/mfa/totp', { code: await codeAt(secret) });
    await flow.tokens(); // this browser is now known to the account (its device cookie)

    await flow.start({ prompt: 'login' });
    await flow.login();
    for (let i = 0; i < 5; i++) await flow.submit('/mfa/totp', { code: '000000' });
    const user = (await server.users.findByEmail(USER.email))!;
    expect(user.lockouts).toBe(1);
    expect(new Date(user.locked_until!).getTime()).toBeGreaterThan(Date.now());
  });
});
