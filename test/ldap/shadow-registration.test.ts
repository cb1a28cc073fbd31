import type * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmailTokens } from '../../server/users/email-tokens.ts';
import { Browser, formAction, hiddenInput } from '../support/browser.ts';
import { smtpEnv } from '../support/mailbox.ts';
import { mailsTo, registerAndResend, registerAt } from '../support/register.ts';
import {
  REDIRECT_URI,
  relyingParty,
  signIn,
  tryLogin as tryLoginAt,
} from '../support/relying-party.ts';
import { startTestServer, storageEnv, type TestServer } from '../support/server.ts';
import { SEEDED, startSlapd, type Slapd } from '../support/slapd.ts';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp.ts';

const { alice, bob, dave } = SEEDED;
const REGISTRANT_PASSWORD = 'the registrant chose this one';

describe('self-registration beside a directory (real slapd, PostgreSQL + Redis)', () => {
  let slapd: Slapd;
  let smtp: TestSmtpServer;
  let server: TestServer;
  let rp: oidc.Configuration;

  beforeAll(async () => {
    slapd = await startSlapd();
    smtp = await startSmtpServer();
    server = await startTestServer({
      ...(await storageEnv('postgres+redis')),
      ...slapd.env(),
      ...smtpEnv(smtp),
      REGISTRATION_ENABLED: 'true',
      REGISTRATION_BLOCKED_DOMAINS: 'corp.test, Staff.Example',
    });
    const client = await server.clients.create({ name: 'Intranet', redirectUris: [REDIRECT_URI] });
    rp = await relyingParty(server.url, client.clientId, client.clientSecret);
  });
  afterAll(async () => {
    await server?.cleanup();
    await smtp?.stop();
    await slapd?.cleanup();
  });

  const tryLogin = (login: string, password: string) => tryLoginAt(rp, server.url, login, password);

  it("lets a directory user sign in by email over an unverified local account with that address; the registrant's password and link stop working", async () => {
    // Registered before the directory listed the address: never verified.
    const shadow = await server.users.create({ email: dave.email, password: REGISTRANT_PASSWORD });
    const tokens = createEmailTokens(server.db);
    const pending = await tokens.issue(shadow.id, 'verify_email', 3600);

    const signedIn = await signIn(rp, new Browser(), server.url, {
      email: dave.email,
      password: dave.password,
      scope: 'openid email',
    });
    expect(signedIn.claims()).toMatchObject({ email: dave.email });
    expect(signedIn.claims()!.sub).not.toBe(shadow.id);
    expect(await server.users.findById(shadow.id)).toBeUndefined();
    expect(await server.users.findByEmail(dave.email)).toMatchObject({
      source: 'ldap',
      password_hash: null,
    });
    const registrant = await tryLogin(dave.email, REGISTRANT_PASSWORD);
    expect(registrant.status).toBe(400);
    expect(registrant.html).toContain('The email or password is incorrect.');
    expect(await tokens.redeem(pending, 'verify_email')).toEqual({ ok: false, reason: 'invalid' });
  });

  it("never verifies a local account registered for an address the directory lists; its person's sign-in replaces it", async () => {
    // Registered before the directory listed the address; the link went to the directory user.
    const shadow = await server.users.create({ email: alice.email, password: REGISTRANT_PASSWORD });
    const token = await createEmailTokens(server.db).issue(shadow.id, 'verify_email', 3600);
    const browser = new Browser();
    const confirm = await (
      await browser.get(`${server.url}/interaction/gone/verify?token=${token}`)
    ).text();
    const res = await browser.post(new URL(formAction(confirm, '/verify'), server.url), {
      csrf: hiddenInput(confirm, 'csrf'),
      token: hiddenInput(confirm, 'token'),
    });
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('This link is not valid.');
    expect(await server.users.findById(shadow.id)).toMatchObject({ email_verified: false });

    const signedIn = await signIn(rp, new Browser(), server.url, {
      email: alice.uid,
      password: alice.password,
      scope: 'openid email',
    });
    expect(signedIn.claims()!.sub).not.toBe(shadow.id);
    expect(await server.users.findById(shadow.id)).toBeUndefined();
  });

  it("answers a directory user's address like a new one, creates no account, and tells the directory user instead", async () => {
    const before = smtp.messages.length;
    const fresh = await registerAndResend({ server, rp }, 'newcomer@example.test');
    const taken = await registerAndResend({ server, rp }, bob.email);
    expect(taken.registered).toEqual(fresh.registered);
    expect(taken.resent).toEqual(fresh.resent);
    expect(taken.work).toEqual(fresh.work);
    expect(await server.users.findByEmail(bob.email)).toBeUndefined();
    expect(await mailsTo(smtp, bob.email, before, 'Someone tried to register', 1)).toHaveLength(1);
    expect(await mailsTo(smtp, 'newcomer@example.test', before, 'Verify', 2)).toHaveLength(2);
    expect(await mailsTo(smtp, bob.email, before, 'Verify', 0)).toEqual([]);
    const bobSignsIn = await signIn(rp, new Browser(), server.url, {
      email: bob.email,
      password: bob.password,
      scope: 'openid email',
    });
    expect(bobSignsIn.claims()).toMatchObject({ email: bob.email });
  });

  it('refuses self-registration at a directory-managed domain, in any case, and creates nothing', async () => {
    const attempts: [string, string][] = [
      ['someone@corp.test', 'corp.test'],
      ['someone@STAFF.example', 'staff.example'],
    ];
    for (const [email, domain] of attempts) {
      const { res, html } = await registerAt({ server, rp }, new Browser(), {
        email,
        name: 'Some One',
      });
      expect(res.status).toBe(400);
      expect(html).toContain(`Accounts at ${domain} are managed by your organisation`);
      expect(await server.users.findByEmail(email)).toBeUndefined();
    }
  });

  it('refuses registration, saying why, while the directory cannot be asked about the address', async () => {
    await slapd.stop();
    try {
      const { res, html } = await registerAt({ server, rp }, new Browser(), {
        email: 'while.down@example.test',
        name: 'While Down',
      });
      expect(res.status).toBe(503);
      expect(html).toContain('directory cannot be reached');
      expect(await server.users.findByEmail('while.down@example.test')).toBeUndefined();
    } finally {
      await slapd.start();
    }
  });
});
