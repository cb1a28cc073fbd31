import type * as oidc from 'openid-client';
import { generate } from 'otplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, hiddenInput } from '../support/browser.ts';
import { signIn, tryLogin as tryLoginAt } from '../support/relying-party.ts';
import type { TestServer } from '../support/server.ts';
import { startSlapdServer } from '../support/slapd-server.ts';
import { SEEDED, type Slapd } from '../support/slapd.ts';

const { alice } = SEEDED;
const LOCAL = { email: 'local.lena@example.test', password: 'lena is a local account' };
const SCOPE = 'openid email profile roles';

describe('directory users on the hosted login page (real slapd, PostgreSQL + Redis)', () => {
  let slapd: Slapd;
  let server: TestServer;
  let rp: oidc.Configuration;

  beforeAll(async () => {
    ({ slapd, server, rp } = await startSlapdServer('postgres+redis', LOCAL));
  });
  afterAll(async () => {
    await server?.cleanup();
    await slapd?.cleanup();
  });

  const tryLogin = (login: string, password: string) => tryLoginAt(rp, server.url, login, password);

  it('signs in by directory username and by email; the ID token carries the mapped claims and roles', async () => {
    const byUid = await signIn(rp, new Browser(), server.url, {
      email: alice.uid,
      password: alice.password,
      scope: SCOPE,
    });
    const claims = byUid.claims()!;
    expect(claims).toMatchObject({ email: alice.email, name: alice.cn, roles: ['admin', 'staff'] });
    const byEmail = await signIn(rp, new Browser(), server.url, {
      email: alice.email,
      password: alice.password,
      scope: SCOPE,
    });
    expect(byEmail.claims()!.sub).toBe(claims.sub);
    const user = await server.users.findById(claims.sub);
    expect(user).toMatchObject({ source: 'ldap', password_hash: null });
  });

  it('refuses a wrong directory password, an unknown login and filter injection alike', async () => {
    const answers = [
      await tryLogin(alice.uid, 'not alice password'),
      await tryLogin('nobody-here', 'whatever it is'),
      await tryLogin('*', alice.password),
      await tryLogin('alice)(uid=*', alice.password),
    ];
    for (const a of answers) {
      expect(a.status).toBe(400);
      expect(a.html).toContain('The email or password is incorrect.');
    }
  });

  it('keeps local sign-in working while the directory is down, and says so to directory users', async () => {
    await slapd.stop();
    try {
      const down = await tryLogin(alice.uid, alice.password);
      expect(down.status).toBe(503);
      expect(down.html).toContain('directory cannot be reached');
      const local = await signIn(rp, new Browser(), server.url, { ...LOCAL, scope: 'openid' });
      expect(local.access_token).toBeTruthy();
    } finally {
      await slapd.start();
    }
    const back = await signIn(rp, new Browser(), server.url, {
      email: alice.uid,
      password: alice.password,
      scope: 'openid',
    });
    expect(back.access_token).toBeTruthy();
  });

  it('sends a directory user to the directory for password changes: no local password is set', async () => {
    const browser = new Browser();
    await signIn(rp, browser, server.url, {
      email: alice.uid,
      password: alice.password,
      scope: 'openid',
    });
    const page = await (await browser.get(`${server.url}/account/password`)).text();
    expect(page).toContain('managed by your organisation');
    expect(page).not.toContain('name="password"');
    const user = (await server.users.findByEmail(alice.email))!;
    expect(await server.users.setPassword(user.id, 'a local password now')).toBe(false);
    expect((await server.users.findById(user.id))!.password_hash).toBeNull();

    // Account changes that ask for the current password check it against the directory.
    const enrol = await (await browser.get(`${server.url}/account/mfa/totp`)).text();
    const secret = /aria-label="Setup key">([A-Z2-7 ]+)</.exec(enrol)![1]!.replace(/ /g, '');
    const post = (password: string) =>
      browser.post(`${server.url}/account/mfa/totp`, {
        csrf: hiddenInput(enrol, 'csrf'),
        password,
      });
    const wrong = await post('not alice password');
    expect(await wrong.text()).toContain('Your current password is not right.');
    const done = await browser.post(`${server.url}/account/mfa/totp`, {
      csrf: hiddenInput(enrol, 'csrf'),
      password: alice.password,
      code: await generate({ secret }),
    });
    expect(await done.text()).toContain('recovery codes');

    // The email address is the directory's too: its page sends the user there instead
    // (test/ldap/account-profile.test.ts).
    const form = await (await browser.get(`${server.url}/account/email`)).text();
    expect(form).toContain('come from your organisation’s directory');
    expect(form).not.toContain('name="current"');
  });
});
