import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser } from '../support/browser.ts';
import { REDIRECT_URI, relyingParty, signIn } from '../support/relying-party.ts';
import {
  STORAGES,
  startTestServer,
  storageEnv,
  type Storage,
  type TestServer,
} from '../support/server.ts';

// RATE_LIMIT_TOKEN_CLIENT: per confidential client, and per client and IP for a public one.

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

  it('refuses the client over its limit at the token endpoint however its path is spelled (/Token/)', async () => {
    const busy = await server.clients.create({
      name: 'Spelled',
      redirectUris: [],
      grantTypes: ['client_credentials'],
    });
    const authorization = `Basic ${Buffer.from(`${busy.clientId}:${busy.clientSecret}`).toString('base64')}`;
    await untilRefused(() => token('grant_type=client_credentials', { authorization }), 3);
    const res = await fetch(`${server.url}/Token/`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization },
      body: 'grant_type=client_credentials',
    });
    expect(res.status).toBe(429);
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
