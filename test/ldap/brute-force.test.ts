import { Attribute, Change } from 'ldapts';
import type * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser } from '../support/browser.ts';
import { signIn, tryLogin as tryLoginAt } from '../support/relying-party.ts';
import type { TestServer } from '../support/server.ts';
import { startSlapdServer } from '../support/slapd-server.ts';
import { PEOPLE, SEEDED, type Slapd } from '../support/slapd.ts';

const { alice, bob, dave, jsmith } = SEEDED;
const LOCAL = { email: 'local.lars@example.test', password: 'lars is a local account' };
const WRONG = 'not the directory password';

/**
 * A lower-case ASCII login spelled in other Unicode letters (fullwidth, mathematical bold,
 * italic …, circled) that NFKC folds back to it: OpenLDAP (RFC 4518 string preparation) takes
 * each for the login itself, in searches and in bind DNs alike (11 spellings it was seen to).
 */
function compatibilitySpellings(login: string): string[] {
  const firstSmallA = [
    0xff41, 0x1d41a, 0x1d44e, 0x1d482, 0x1d4ea, 0x1d51e, 0x1d552, 0x1d586, 0x1d5ba, 0x1d5ee, 0x24d0,
  ];
  return firstSmallA.map((a) =>
    [...login].map((c) => String.fromCodePoint(a + c.charCodeAt(0) - 0x61)).join(''),
  );
}

describe('brute-force protection for directory users (real slapd, PostgreSQL + Redis)', () => {
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

  /** Argon2 verifications of the app's own hasher while `work` runs. */
  async function verificationsDuring(work: () => Promise<unknown>) {
    const hasher = server.passwords;
    const verify = hasher.verify;
    let count = 0;
    hasher.verify = (...args) => (count++, verify(...args));
    try {
      await work();
    } finally {
      hasher.verify = verify;
    }
    return count;
  }

  it('locks a directory account guessed at by username, and counts username and email guesses as one account', async () => {
    // Dave has signed in before: his local account exists.
    await signIn(rp, new Browser(), server.url, { ...dave, email: dave.uid, scope: 'openid' });

    for (let i = 0; i < 5; i++) expect((await tryLogin(dave.uid, WRONG)).status).toBe(400);
    const locked = (await server.users.findByEmail(dave.email))!;
    expect(new Date(locked.locked_until!).getTime()).toBeGreaterThan(Date.now());
    // Locked: the right password by username or by email answers like a wrong one.
    for (const login of [dave.uid, dave.email]) {
      const answer = await tryLogin(login, dave.password);
      expect(answer.status).toBe(400);
      expect(answer.html).toContain('The email or password is incorrect.');
    }
    // 7 counted so far; 3 more by email reach the account limit (10), whatever was typed.
    for (let i = 0; i < 3; i++) expect((await tryLogin(dave.email, WRONG)).status).toBe(400);
    expect((await tryLogin(dave.uid, WRONG)).status).toBe(429);
    expect((await tryLogin(dave.email, WRONG)).status).toBe(429);
  });

  it('counts guesses at a linked entry that lost its email toward its account, which then locks', async () => {
    // Alice has signed in before; then her entry loses its mail: it is no user any more (every
    // sign-in is refused), but still her account's. Guesses at her directory password must go on
    // counting against that account, or they could go on without end.
    await signIn(rp, new Browser(), server.url, { ...alice, email: alice.uid, scope: 'openid' });
    await slapd.asAdmin((admin) =>
      admin.modify(
        alice.dn,
        new Change({ operation: 'delete', modification: new Attribute({ type: 'mail' }) }),
      ),
    );
    for (let i = 0; i < 5; i++) expect((await tryLogin(alice.uid, WRONG)).status).toBe(400);
    const locked = (await server.users.findByEmail(alice.email))!;
    expect(new Date(locked.locked_until!).getTime()).toBeGreaterThan(Date.now());
    // Her right password answers as a wrong one does.
    const answer = await tryLogin(alice.uid, alice.password);
    expect(answer.status).toBe(400);
    expect(answer.html).toContain('The email or password is incorrect.');
  });

  it('counts guesses at a directory user not yet signed in here as one login, however it is spelled', async () => {
    const spellings = compatibilitySpellings(bob.uid);
    expect(spellings.map((s) => s.normalize('NFKC'))).toEqual(spellings.map(() => bob.uid));
    // Bob has no account here yet: the account limit (10) is the login's, however spelled.
    for (const login of spellings.slice(0, 10))
      expect((await tryLogin(login, WRONG)).status).toBe(400);
    expect((await tryLogin(bob.uid, WRONG)).status).toBe(429);
    expect((await tryLogin(spellings[10]!, WRONG)).status).toBe(429);
  });

  it('does the same argon2 work for an unknown login, a directory user and a local user', async () => {
    const counts = [
      await verificationsDuring(() => tryLogin('nobody-at-all', WRONG)),
      await verificationsDuring(() => tryLogin('nobody@example.test', WRONG)),
      await verificationsDuring(() => tryLogin(jsmith.uid, WRONG)),
      await verificationsDuring(() => tryLogin(jsmith.email, WRONG)),
      await verificationsDuring(() => tryLogin(LOCAL.email, WRONG)),
    ];
    expect(counts).toEqual([1, 1, 1, 1, 1]);
  });
});

describe('brute-force protection with a bind DN template and no service account (real slapd)', () => {
  let slapd: Slapd;
  let server: TestServer;
  let rp: oidc.Configuration;

  beforeAll(async () => {
    ({ slapd, server, rp } = await startSlapdServer('postgres+redis', LOCAL, {
      LDAP_BIND_DN: '',
      LDAP_BIND_PASSWORD: '',
      LDAP_BIND_TEMPLATE: `uid={login},${PEOPLE}`,
    }));
  });
  afterAll(async () => {
    await server?.cleanup();
    await slapd?.cleanup();
  });

  const tryLogin = (login: string, password: string) => tryLoginAt(rp, server.url, login, password);

  it("counts guesses at a linked user's other spellings of the login toward the account, which then locks", async () => {
    // Each spelling binds as dave's entry (the directory folds it to "dave"): his first sign-in.
    const spellings = compatibilitySpellings(dave.uid);
    await signIn(rp, new Browser(), server.url, {
      ...dave,
      email: spellings[10]!,
      scope: 'openid',
    });
    expect((await server.users.findByEmail(dave.email))?.source).toBe('ldap');
    for (const login of spellings.slice(0, 5))
      expect((await tryLogin(login, WRONG)).status).toBe(400);
    const locked = (await server.users.findByEmail(dave.email))!;
    expect(locked.locked_until).not.toBeNull();
    expect(new Date(locked.locked_until!).getTime()).toBeGreaterThan(Date.now());
    for (const login of [dave.uid, spellings[6]!]) {
      const answer = await tryLogin(login, dave.password);
      expect(answer.status).toBe(400);
      expect(answer.html).toContain('The email or password is incorrect.');
    }
  });
});
