import { Redis } from 'ioredis';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, formAction, hiddenInput } from '../support/browser.ts';
import {
  authorizationRequest,
  REDIRECT_URI,
  relyingParty,
  signIn,
} from '../support/relying-party.ts';
import {
  STORAGES,
  startTestServer,
  storageEnv,
  type Storage,
  type TestServer,
} from '../support/server.ts';

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
    server = await startTestServer({
      ...(await storageEnv('embedded')),
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

describe.each(STORAGES)('token endpoint limit per client on %s storage', (storage: Storage) => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer({
      ...(await storageEnv(storage)),
      RATE_LIMIT_TOKEN_CLIENT: '3/1m',
    });
  });
  afterAll(() => server?.cleanup());

  const token = (body: string, headers: Record<string, string> = {}) =>
    fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body,
    });

  /** Sends until refused (or limit + 2 requests); the refusal and what went through before. */
  async function untilRefused(send: () => Promise<Response>, limit: number) {
    const passed: Response[] = [];
    for (let i = 0; i < limit + 2; i++) {
      const res = await send();
      if (res.status === 429) return { refused: res, passed };
      passed.push(res);
    }
    throw new Error(`not refused after ${limit + 2} requests`);
  }

  it('refuses the client over its limit with an OAuth error, 429 and Retry-After; other clients go on', async () => {
    const make = (name: string) =>
      server.clients.create({ name, redirectUris: [], grantTypes: ['client_credentials'] });
    const [busy, other] = await Promise.all([make('Busy'), make('Other')]);
    const basic = (c: { clientId: string; clientSecret?: string | undefined }) => ({
      authorization: `Basic ${Buffer.from(`${c.clientId}:${c.clientSecret}`).toString('base64')}`,
    });
    const { refused, passed } = await untilRefused(
      () => token('grant_type=client_credentials', basic(busy)),
      3,
    );
    expect(passed).toHaveLength(3);
    for (const res of passed) expect(res.status).toBe(200);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await refused.json()).toMatchObject({ error: 'temporarily_unavailable' });
    expect((await token('grant_type=client_credentials', basic(other))).status).toBe(200);
  });

  it('counts a public client named in the form, and oidc-provider still reads that form', async () => {
    const spa = await server.clients.create({
      name: 'SPA',
      redirectUris: [REDIRECT_URI],
      public: true,
    });
    const body = new URLSearchParams({
      grant_type: 'refresh_token',
      refresh_token: 'not-a-real-refresh-token',
      client_id: spa.clientId,
    }).toString();
    const { passed } = await untilRefused(() => token(body), 3);
    expect(passed).toHaveLength(3);
    for (const res of passed) {
      expect(res.status).toBe(400);
      // invalid_grant, not invalid_request: the body reached oidc-provider whole.
      expect(await res.json()).toMatchObject({ error: 'invalid_grant' });
    }
  });

  it('does not count requests that fail to authenticate: naming a client spends nothing of its budget', async () => {
    const victim = await server.clients.create({
      name: 'Victim',
      redirectUris: [],
      grantTypes: ['client_credentials'],
    });
    const as = (secret: string | undefined) => ({
      authorization: `Basic ${Buffer.from(`${victim.clientId}:${secret}`).toString('base64')}`,
    });
    for (let i = 0; i < 5; i++)
      expect((await token('grant_type=client_credentials', as('wrong secret'))).status).toBe(401);
    expect((await token('grant_type=client_credentials', as(victim.clientSecret))).status).toBe(
      200,
    );
  });

  it('reads a chunked body sent slowly, hands it on whole, and limits it like any other', async () => {
    const spa = await server.clients.create({
      name: 'Chunked SPA',
      redirectUris: [REDIRECT_URI],
      public: true,
    });
    const parts = [`grant_type=refresh_token&client_id=${spa.clientId}`, '&refresh_token=', 'x'];
    const chunked = () =>
      fetch(`${server.url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        duplex: 'half',
        body: new ReadableStream({
          async start(controller) {
            for (const part of parts) {
              controller.enqueue(new TextEncoder().encode(part));
              await new Promise((r) => setTimeout(r, 20));
            }
            controller.close();
          },
        }),
      } as RequestInit);
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      const { passed } = await untilRefused(chunked, 3);
      expect(passed).toHaveLength(3);
      for (const res of passed) expect(await res.json()).toMatchObject({ error: 'invalid_grant' });
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings.map((w) => w.name)).not.toContain('MaxListenersExceededWarning');
  });
});

describe('token endpoint limit: a public client is counted per client and IP', () => {
  let server: TestServer;
  const USER = { email: 'spa.user@example.test', password: 'a long password for the spa' };

  beforeAll(async () => {
    server = await startTestServer({
      ...(await storageEnv('postgres+redis')),
      TRUST_PROXY: 'loopback',
      RATE_LIMIT_TOKEN_CLIENT: '3/1m',
    });
    await server.users.create({ ...USER, emailVerified: true });
  });
  afterAll(() => server?.cleanup());

  const token = (ip: string, body: Record<string, string>, headers: Record<string, string> = {}) =>
    fetch(`${server.url}/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-forwarded-for': ip,
        ...headers,
      },
      body: new URLSearchParams(body).toString(),
    });

  /** A relying party whose token requests come from `ip` (as the trusted proxy says). */
  async function fromIp(ip: string, clientId: string, clientSecret?: string) {
    const rp = await relyingParty(server.url, clientId, clientSecret);
    rp[oidc.customFetch] = (url, options) => {
      const headers = new Headers(options.headers as ConstructorParameters<typeof Headers>[0]);
      headers.set('x-forwarded-for', ip);
      return fetch(url, { ...options, headers } as RequestInit);
    };
    return rp;
  }

  it("bogus code exchanges from one IP use up that IP's budget only: another IP's users still get and refresh tokens", async () => {
    const spa = await server.clients.create({
      name: 'Public SPA',
      redirectUris: [REDIRECT_URI],
      public: true,
    });
    const bogus = () =>
      token('203.0.113.66', {
        grant_type: 'authorization_code',
        code: 'not-a-real-code',
        redirect_uri: REDIRECT_URI,
        code_verifier: 'v'.repeat(43),
        client_id: spa.clientId,
      });
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await bogus()).status);
    expect(statuses).toEqual([400, 400, 400, 429, 429]);

    // A user of the same app elsewhere: the code exchange and a refresh both go through.
    const rp = await fromIp('198.51.100.20', spa.clientId);
    const tokens = await signIn(rp, new Browser(), server.url, USER);
    expect(tokens.access_token).toBeTruthy();
    const refreshed = await oidc.refreshTokenGrant(rp, tokens.refresh_token!);
    expect(refreshed.access_token).toBeTruthy();

    // The attacker's own address is still refused, with the OAuth error and Retry-After.
    const again = await bogus();
    expect(again.status).toBe(429);
    expect(Number(again.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await again.json()).toMatchObject({ error: 'temporarily_unavailable' });
  });

  it('a confidential client keeps one budget for all its addresses', async () => {
    const api = await server.clients.create({
      name: 'Confidential',
      redirectUris: [],
      grantTypes: ['client_credentials'],
    });
    const basic = {
      authorization: `Basic ${Buffer.from(`${api.clientId}:${api.clientSecret}`).toString('base64')}`,
    };
    const grant = (ip: string) => token(ip, { grant_type: 'client_credentials' }, basic);
    expect((await grant('192.0.2.1')).status).toBe(200);
    expect((await grant('192.0.2.2')).status).toBe(200);
    expect((await grant('192.0.2.3')).status).toBe(200);
    expect((await grant('192.0.2.4')).status).toBe(429);
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
