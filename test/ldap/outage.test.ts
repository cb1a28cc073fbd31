import { createServer, type Server, type Socket } from 'node:net';
import type * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { PROBE_AFTER_MS } from '../../server/ldap/breaker.ts';
import { Browser } from '../support/browser.ts';
import { signIn, tryLogin } from '../support/relying-party.ts';
import type { TestServer } from '../support/server.ts';
import { startSlapdServer } from '../support/slapd-server.ts';
import { startTestDirectory, useSlapdDirectory, type TestDirectory } from '../support/directory.ts';
import { freePort } from '../support/services.ts';
import { SEEDED, type Slapd } from '../support/slapd.ts';

const { alice, bob } = SEEDED;
const UNAVAILABLE = { ok: false, reason: 'unavailable' };

describe('when the directory goes away', () => {
  const ldap = useSlapdDirectory({ settings: { LDAP_POOL_SIZE: '2' } });

  it('says unavailable while slapd is stopped, local users still sign in, and recovers by itself after restart', async () => {
    const local = ldap.t.services.users;
    await local.create({
      email: 'local@example.test',
      password: 'a local password',
      emailVerified: true,
    });
    // Fill the pool: these connections die with the server and must not be reused after.
    expect((await ldap.t.directory.authenticate('alice', alice.password)).ok).toBe(true);
    expect((await ldap.t.directory.authenticate('bob', bob.password)).ok).toBe(true);

    await ldap.slapd.stop();
    const started = Date.now();
    expect(await ldap.t.directory.authenticate('alice', alice.password)).toEqual(UNAVAILABLE);
    expect(await ldap.t.directory.authenticate('nobody', 'whatever')).toEqual(UNAVAILABLE);
    expect(Date.now() - started).toBeLessThan(5000);
    await expect(ldap.t.directory.check()).rejects.toThrow();
    // Failed repeatedly: left alone for a moment, the scheduled sync fails at once and clearly,
    // having changed nothing.
    await expect(ldap.t.directory.sync()).rejects.toThrow(/directory failed repeatedly/);
    expect(await ldap.t.localUser(alice.email)).toMatchObject({ disabled: false });
    expect((await local.authenticate('local@example.test', 'a local password'))?.email).toBe(
      'local@example.test',
    );
    // The local copy of a directory user is not a way in while the directory is down.
    expect(await local.authenticate(alice.email, alice.password)).toBeUndefined();

    await ldap.slapd.start();
    // Still left alone just after: then a probe (here the readiness check) finds it back.
    await expect(ldap.t.directory.check()).rejects.toThrow(/directory failed repeatedly/);
    const restarted = Date.now();
    await vi.waitFor(() => ldap.t.directory.check(), { timeout: 10_000, interval: 100 });
    expect(Date.now() - restarted).toBeLessThan(PROBE_AFTER_MS + 1000);
    await expect(ldap.t.directory.sync()).resolves.toMatchObject({ errors: 0 });
    const again = await ldap.t.directory.authenticate('alice', alice.password);
    expect(again.ok && again.user.email).toBe(alice.email);
    expect(await ldap.t.directory.authenticate('alice', 'wrong')).toEqual({
      ok: false,
      reason: 'invalid',
    });
  });

  it('recovers a pooled connection the server dropped between sign-ins', async () => {
    expect((await ldap.t.directory.authenticate('alice', alice.password)).ok).toBe(true);
    await ldap.slapd.stop();
    await ldap.slapd.start();
    // No failure in between: the stale connection is replaced without the user noticing.
    expect((await ldap.t.directory.authenticate('alice', alice.password)).ok).toBe(true);
  });
});

describe('a directory that accepts connections but never answers', () => {
  let server: Server;
  let port: number;
  const sockets: Socket[] = [];
  let t: TestDirectory;
  beforeAll(async () => {
    port = await freePort();
    server = createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    t = await startTestDirectory({
      LDAP_URL: `ldap://127.0.0.1:${port}`,
      LDAP_BIND_DN: 'cn=latchkey,dc=example,dc=test',
      LDAP_BIND_PASSWORD: 'x',
      LDAP_USER_BASE: 'dc=example,dc=test',
      LDAP_SYNC_INTERVAL_SECONDS: '0',
      LDAP_CONNECT_TIMEOUT_MS: '300',
      LDAP_TIMEOUT_MS: '500',
    });
  });
  afterAll(async () => {
    await t?.cleanup();
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server?.close(resolve));
  });

  it('gives up within the configured timeouts and says unavailable', async () => {
    const started = Date.now();
    expect(await t.directory.authenticate('alice', 'password')).toEqual(UNAVAILABLE);
    expect(Date.now() - started).toBeLessThan(2000);
    await expect(t.directory.check()).rejects.toThrow(/no answer|timed out/);
  });
});

/** How long `work` took to settle, and what it gave. */
async function timed<T>(work: Promise<T>): Promise<{ value: T; ms: number }> {
  const started = Date.now();
  const value = await work;
  return { value, ms: Date.now() - started };
}

describe('a hung directory (slapd frozen by SIGSTOP) on the hosted login page', () => {
  const LOCAL = { email: 'local.lena@example.test', password: 'lena is a local account' };
  // The slapd settings: 1 s to connect, 2 s an operation; a directory call gives up after both.
  const CALL_BOUND_MS = 3000;
  let slapd: Slapd;
  let server: TestServer;
  let rp: oidc.Configuration;

  beforeAll(async () => {
    ({ slapd, server, rp } = await startSlapdServer('embedded', LOCAL));
  });
  afterAll(async () => {
    await server?.cleanup();
    await slapd?.cleanup();
  });

  // Directory users already linked here, each twice (LOGIN_IN_FLIGHT_ACCOUNT): their emails
  // name local accounts, so each attempt takes its sign-in slots before asking the directory.
  const linked = [SEEDED.alice, SEEDED.bob, SEEDED.dave, SEEDED.jsmith];
  const directoryLogins = [...linked, ...linked].map((user) => user.email);
  const signInLocal = () => signIn(rp, new Browser(), server.url, { ...LOCAL, scope: 'openid' });
  const expectDirectoryDown = (answer: { status: number; html: string }) => {
    expect(answer.status).toBe(503);
    expect(answer.html).toContain('directory cannot be reached');
  };

  it('answers directory sign-ins within the directory timeouts, then at once without waiting on it, local users unaffected, and recovers by itself', async () => {
    for (const user of linked) {
      const warm = await signIn(rp, new Browser(), server.url, {
        email: user.uid,
        password: user.password,
        scope: 'openid',
      });
      expect(warm.access_token).toBeTruthy();
    }

    slapd.hang();
    try {
      // As many at once as one IP may have in flight (LOGIN_IN_FLIGHT_IP): each is told within
      // one directory call's bound, not one per LDAP operation of the sign-in.
      const first = await Promise.all(
        directoryLogins.map((login) => timed(tryLogin(rp, server.url, login, 'some password'))),
      );
      for (const { value } of first) expectDirectoryDown(value);
      expect(Math.max(...first.map((a) => a.ms))).toBeLessThan(CALL_BOUND_MS + 1500);

      // The directory failed repeatedly: it is not asked again for a while, so directory
      // sign-ins hold no slot while a local user signs in just after them. Once that while has
      // passed, one sign-in probes the directory (and waits, within the bound): the others
      // do not wait behind it.
      for (const pause of [0, PROBE_AFTER_MS]) {
        await new Promise((resolve) => setTimeout(resolve, pause));
        const answers = directoryLogins.map((login) =>
          timed(tryLogin(rp, server.url, login, 'some password')),
        );
        await new Promise((resolve) => setTimeout(resolve, 300));
        const local = await timed(signInLocal());
        expect(local.value.access_token).toBeTruthy();
        expect(local.ms).toBeLessThan(2000);
        const times = [];
        for (const { value, ms } of await Promise.all(answers)) {
          expectDirectoryDown(value);
          times.push(ms);
        }
        const [probe, ...others] = times.sort((a, b) => b - a);
        expect(probe).toBeLessThan(CALL_BOUND_MS + 1500);
        expect(Math.max(...others)).toBeLessThan(1500);
      }
    } finally {
      slapd.resume();
    }

    // Without a restart of Latchkey: a probe gets through within seconds, and sign-ins work again.
    const resumed = Date.now();
    await vi.waitFor(
      async () => expect((await tryLogin(rp, server.url, alice.uid, 'wrong')).status).toBe(400),
      { timeout: 10_000, interval: 100 },
    );
    expect(Date.now() - resumed).toBeLessThan(PROBE_AFTER_MS + CALL_BOUND_MS);
    const back = await signIn(rp, new Browser(), server.url, {
      email: alice.uid,
      password: alice.password,
      scope: 'openid',
    });
    expect(back.access_token).toBeTruthy();
  });
});
