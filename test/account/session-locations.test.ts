import { rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openIpLocation } from '../../server/ip-location.ts';
import { Browser } from '../support/browser.ts';
import { cityRecord, writeMmdb } from '../support/mmdb-writer.ts';
import { REDIRECT_URI, relyingParty, signIn } from '../support/relying-party.ts';
import { STORAGES, startTestServer, storageEnv, type TestServer } from '../support/server.ts';

const USER = { email: 'viajante@example.test', password: 'a long way from home today' };
const FIREFOX = 'Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0';
const SAFARI =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1';

/**
 * A GeoIP database that also places loopback and a private range: the server must not show
 * those, whatever a database says of them.
 */
const geoipDb = () =>
  writeMmdb([
    { network: '203.0.113.0/24', record: cityRecord('Lisbon', 'Portugal', 'PT') },
    { network: '2001:db8::/32', record: { country: { iso_code: 'IS', names: { en: 'Iceland' } } } },
    { network: '127.0.0.0/8', record: cityRecord('Loopback City', 'Nowhere', 'XX') },
    { network: '10.0.0.0/8', record: cityRecord('Private Town', 'Nowhere', 'XX') },
  ]);

/** A browser whose requests come through the trusted proxy (loopback) for `ip`. */
const browserAt = (ip: string, userAgent: string) =>
  new Browser({
    userAgent,
    transport: (url, init) =>
      fetch(url, { ...init, headers: { ...(init?.headers as object), 'x-forwarded-for': ip } }),
  });

/** The part of the sessions page about the session described as `device`. */
function sessionItem(html: string, device: string): string {
  const item = html.split('<li class="session').find((part) => part.includes(device));
  if (!item) throw new Error(`no session of ${device} in the page`);
  return item.split('</li>')[0]!;
}

async function appFor(server: TestServer) {
  await server.users.create({ ...USER, name: 'Via Jante', emailVerified: true });
  const client = await server.clients.create({ name: 'Far app', redirectUris: [REDIRECT_URI] });
  return relyingParty(server.url, client.clientId, client.clientSecret);
}

describe.each(STORAGES)('approximate locations with GEOIP_DB on %s storage', (storage) => {
  let server: TestServer;
  let rp: oidc.Configuration;
  let db: string;
  beforeAll(async () => {
    db = geoipDb();
    server = await startTestServer({
      ...(await storageEnv(storage)),
      TRUST_PROXY: 'loopback',
      GEOIP_DB: db,
    });
    rp = await appFor(server);
  });
  afterAll(async () => {
    await server?.cleanup();
    rmSync(dirname(db), { recursive: true, force: true });
  });

  it('shows the city and country of a session from 203.0.113.7, and none for loopback', async () => {
    const abroad = browserAt('203.0.113.7', FIREFOX);
    await signIn(rp, abroad, server.url, USER);
    const home = new Browser({ userAgent: SAFARI });
    await signIn(rp, home, server.url, USER);

    const html = await (await home.get(`${server.url}/account/sessions`)).text();
    const far = sessionItem(html, 'Firefox on Linux');
    expect(far).toContain('203.0.113.7');
    expect(far).toContain('<dt>Location</dt><dd>Lisbon, Portugal (approximate)</dd>');
    const near = sessionItem(html, 'Safari on iOS');
    expect(near).toContain('127.0.0.1');
    expect(near).not.toContain('<dt>Location</dt>');
    expect(html).not.toContain('Loopback City');
  });

  it('shows the location beside the IP of the security activity rows', async () => {
    const browser = browserAt('203.0.113.7', FIREFOX);
    await signIn(rp, browser, server.url, USER);
    const html = await (await browser.get(`${server.url}/account/activity`)).text();
    expect(html).toContain('IP 203.0.113.7</span> · <span class="fact">near Lisbon, Portugal');
  });
});

describe('approximate locations', () => {
  it('come from a City or a Country record, never for loopback, private or malformed addresses', async () => {
    const db = geoipDb();
    const location = await openIpLocation(db);
    expect(location.of('203.0.113.7')).toBe('Lisbon, Portugal');
    expect(location.of('::ffff:203.0.113.200')).toBe('Lisbon, Portugal');
    expect(location.of('2001:db8::1')).toBe('Iceland');
    expect(location.of('198.51.100.1')).toBeUndefined();
    for (const nowhere of ['127.0.0.1', '::1', '10.1.2.3', '::ffff:10.1.2.3', 'not an ip', ''])
      expect(location.of(nowhere)).toBeUndefined();
    expect(location.of(undefined)).toBeUndefined();
    rmSync(dirname(db), { recursive: true, force: true });
  });

  it('are not shown without GEOIP_DB, and nothing fails for it', async () => {
    const server = await startTestServer({
      ...(await storageEnv('embedded')),
      TRUST_PROXY: 'loopback',
    });
    try {
      const rp = await appFor(server);
      const browser = browserAt('203.0.113.7', FIREFOX);
      await signIn(rp, browser, server.url, USER);
      const sessions = await browser.get(`${server.url}/account/sessions`);
      expect(sessions.status).toBe(200);
      const html = await sessions.text();
      expect(html).toContain('203.0.113.7');
      expect(html).not.toContain('<dt>Location</dt>');
      const activity = await browser.get(`${server.url}/account/activity`);
      expect(activity.status).toBe(200);
      expect(await activity.text()).not.toContain('near ');
    } finally {
      await server.cleanup();
    }
  });

  it('stop the start, naming GEOIP_DB, when the file is missing or not a MaxMind database', async () => {
    const db = geoipDb();
    const corrupt = join(dirname(db), 'corrupt.mmdb');
    writeFileSync(corrupt, Buffer.from('this is not a MaxMind database at all'.repeat(20)));
    for (const path of [corrupt, join(dirname(db), 'missing.mmdb')]) {
      const env = await storageEnv('embedded');
      await expect(startTestServer({ ...env, GEOIP_DB: path })).rejects.toThrow(
        new RegExp(`^Invalid configuration:\\n  - GEOIP_DB: cannot open ${path}`),
      );
      rmSync(env.DATA_DIR!, { recursive: true, force: true });
    }
    rmSync(dirname(db), { recursive: true, force: true });
  });
});
