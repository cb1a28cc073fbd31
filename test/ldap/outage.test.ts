import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestDirectory, useSlapdDirectory, type TestDirectory } from '../support/directory.ts';
import { freePort } from '../support/services.ts';
import { SEEDED } from '../support/slapd.ts';

const { alice, bob } = SEEDED;
const UNAVAILABLE = { ok: false, reason: 'unavailable' };

describe('when the directory goes away', () => {
  const ldap = useSlapdDirectory({ settings: { LDAP_POOL_SIZE: '2' } });

  it('says unavailable while slapd is stopped, local users still sign in, and recovers after restart', async () => {
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
    await expect(ldap.t.directory.sync()).rejects.toThrow();
    expect((await local.authenticate('local@example.test', 'a local password'))?.email).toBe(
      'local@example.test',
    );
    // The local copy of a directory user is not a way in while the directory is down.
    expect(await local.authenticate(alice.email, alice.password)).toBeUndefined();

    await ldap.slapd.start();
    await expect(ldap.t.directory.check()).resolves.toBeUndefined();
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
