import { Redis } from 'ioredis';
import type * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, formAction, hiddenInput } from '../support/browser.ts';
import { authorizationRequest, REDIRECT_URI, relyingParty } from '../support/relying-party.ts';
import { startTestServer, storageEnv, type TestServer } from '../support/server.ts';

/** One wrong-password post through a fresh login page, as `ip` when a proxy is trusted. */
async function wrongPassword(server: TestServer, rp: oidc.Configuration, ip?: string) {
  const browser = new Browser();
  const forwarded: Record<string, string> = ip ? { 'x-forwarded-for': ip } : {};
  const { url } = await authorizationRequest(rp);
  const login = await browser.follow(await browser.get(url), server.url);
  const html = await login.res.text();
  return browser.request(new URL(formAction(html, '/login'), server.url), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...forwarded },
    body: new URLSearchParams({
      csrf: hiddenInput(html, 'csrf'),
      // A new unknown email each time: only the per-IP limit can add up.
      email: `nobody-${Math.random().toString(36).slice(2)}@example.test`,
      password: 'not the password at all',
    }).toString(),
  });
}

async function webClient(server: TestServer) {
  const client = await server.clients.create({ name: 'Web', redirectUris: [REDIRECT_URI] });
  return relyingParty(server.url, client.clientId, client.clientSecret);
}

describe('login limit per IP, with TRUST_PROXY naming the proxy', () => {
  let server: TestServer;
  let rp: oidc.Configuration;

  beforeAll(async () => {
    server = await startTestServer({
      ...(await storageEnv('postgres+redis')),
      TRUST_PROXY: 'loopback',
      RATE_LIMIT_LOGIN_IP: '5/1m',
    });
    rp = await webClient(server);
  });
  afterAll(() => server?.cleanup());

  it('a burst from one IP gets 429 with Retry-After on the login page; another IP is unaffected', async () => {
    for (let i = 0; i < 5; i++)
      expect((await wrongPassword(server, rp, '203.0.113.5')).status).toBe(400);
    const refused = await wrongPassword(server, rp, '203.0.113.5');
    expect(refused.status).toBe(429);
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    const html = await refused.text();
    expect(html).toContain('Too many attempts');
    expect(html).toContain('name="password"'); // the form is still there, email kept
    expect((await wrongPassword(server, rp, '203.0.113.6')).status).toBe(400);

    // The client address is the one the trusted proxy saw, not what the client claimed before it.
    expect((await wrongPassword(server, rp, '198.51.100.1, 203.0.113.5')).status).toBe(429);

    const redis = new Redis(server.env.REDIS_URL!);
    try {
      expect(await redis.exists('latchkey:rl:login_ip:203.0.113.5')).toBe(1);
    } finally {
      redis.disconnect();
    }
  });
});

describe('IPv6 senders are counted by their /64', () => {
  let server: TestServer;
  let rp: oidc.Configuration;

  beforeAll(async () => {
    server = await startTestServer({
      ...(await storageEnv('postgres+redis')),
      TRUST_PROXY: 'loopback',
      RATE_LIMIT_LOGIN_IP: '5/1m',
      RATE_LIMIT_LOGIN_ACCOUNT: 'off',
      LOCKOUT_THRESHOLD: '0',
    });
    rp = await webClient(server);
  });
  afterAll(() => server?.cleanup());

  it('a burst spread over the addresses of one /64 is one sender; another /64 is not', async () => {
    // One host gets a /64 of its own (RFC 7421): a new address per guess is free to it.
    for (let i = 1; i <= 5; i++)
      expect((await wrongPassword(server, rp, `2001:db8:1:2::${i.toString(16)}`)).status).toBe(400);
    expect((await wrongPassword(server, rp, '2001:db8:1:2:ffff::9')).status).toBe(429);
    expect((await wrongPassword(server, rp, '2001:db8:1:3::1')).status).toBe(400);
    // IPv4 written as IPv6 is the IPv4 address.
    for (let i = 0; i < 5; i++)
      expect((await wrongPassword(server, rp, '::ffff:203.0.113.9')).status).toBe(400);
    expect((await wrongPassword(server, rp, '203.0.113.9')).status).toBe(429);
  });
});

describe('without TRUST_PROXY, X-Forwarded-For is ignored', () => {
  let server: TestServer;
  let rp: oidc.Configuration;

  beforeAll(async () => {
    // PostgreSQL without Redis: the counters are rows, shared by every process.
    const { DATA_DIR, DATABASE_URL } = await storageEnv('postgres+redis');
    server = await startTestServer({
      DATA_DIR: DATA_DIR!,
      DATABASE_URL: DATABASE_URL!,
      RATE_LIMIT_LOGIN_IP: '3/1m',
    });
    rp = await webClient(server);
  });
  afterAll(() => server?.cleanup());

  it('counts the socket address whatever the header says (PostgreSQL-stored counters)', async () => {
    for (let i = 0; i < 3; i++)
      expect((await wrongPassword(server, rp, `192.0.2.${i}`)).status).toBe(400);
    expect((await wrongPassword(server, rp, '192.0.2.99')).status).toBe(429);
    const [row] = await server.db('rate_limits').where('key', 'latchkey:rl:login_ip:127.0.0.1');
    expect(row?.points).toBe(3);

    // The sweep deletes counters that expired over an hour ago, and only those.
    await server.db('rate_limits').insert({ key: 'latchkey:rl:old', points: 1, expire: 1 });
    await server.limits.sweep();
    const keys = (await server.db('rate_limits').select('key')).map((r) => r.key);
    expect(keys).not.toContain('latchkey:rl:old');
    expect(keys).toContain('latchkey:rl:login_ip:127.0.0.1');
    // Every check reached the store: none was let through on an error.
    expect(server.logs.join('')).not.toContain('rate limiter unavailable');
  });
});

describe('the embedded server counts in its own memory', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer({
      ...(await storageEnv('embedded')),
      RATE_LIMIT_LOGIN_IP: '3/1m',
    });
  });
  afterAll(() => server?.cleanup());

  it('refuses the attempt over the limit, with no counter written to the database', async () => {
    const rp = await webClient(server);
    for (let i = 0; i < 3; i++) expect((await wrongPassword(server, rp)).status).toBe(400);
    expect((await wrongPassword(server, rp)).status).toBe(429);
    expect(await server.db('rate_limits').select('key')).toEqual([]);
  });
});

describe('two server processes on one Redis share the counters', () => {
  let a: TestServer;
  let b: TestServer;

  beforeAll(async () => {
    const env = { ...(await storageEnv('postgres+redis')), RATE_LIMIT_LOGIN_IP: '4/1m' };
    a = await startTestServer(env);
    b = await startTestServer(env);
  });
  afterAll(async () => {
    await b?.close();
    await a?.cleanup();
  });

  it('failures on either count toward one limit', async () => {
    const client = await a.clients.create({ name: 'Web', redirectUris: [REDIRECT_URI] });
    const rpA = await relyingParty(a.url, client.clientId, client.clientSecret);
    const rpB = await relyingParty(b.url, client.clientId, client.clientSecret);
    expect((await wrongPassword(a, rpA)).status).toBe(400);
    expect((await wrongPassword(b, rpB)).status).toBe(400);
    expect((await wrongPassword(a, rpA)).status).toBe(400);
    expect((await wrongPassword(b, rpB)).status).toBe(400);
    expect((await wrongPassword(a, rpA)).status).toBe(429);
    expect((await wrongPassword(b, rpB)).status).toBe(429);
  });
});

describe('form limits: password reset requests', () => {
  let server: TestServer;
  let rp: oidc.Configuration;

  beforeAll(async () => {
    server = await startTestServer({
      ...(await storageEnv('postgres+redis')),
      RATE_LIMIT_RESET_IP: '2/1h',
    });
    rp = await webClient(server);
  });
  afterAll(() => server?.cleanup());

  it('answers the request over the limit with a friendly 429 page and Retry-After', async () => {
    const ask = async () => {
      const browser = new Browser();
      const { url } = await authorizationRequest(rp);
      const login = await browser.follow(await browser.get(url), server.url);
      const forgot = new URL(login.url.pathname + '/forgot', server.url);
      const html = await (await browser.get(forgot)).text();
      return browser.post(forgot, { csrf: hiddenInput(html, 'csrf'), email: 'x@example.test' });
    };
    expect((await ask()).status).toBe(200);
    expect((await ask()).status).toBe(200);
    const refused = await ask();
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(3500);
    const html = await refused.text();
    expect(html).toContain('Too many attempts. Wait about 60 minutes, then try again.');
    expect(html).toContain('role="alert"');
  });
});
