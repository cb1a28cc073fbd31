import { request } from 'node:http';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, maskEmails } from '../../server/log.ts';
import { Browser } from '../support/browser.ts';
import { REDIRECT_URI, relyingParty, signIn } from '../support/relying-party.ts';
import { startTestServer, storageEnv, type TestServer } from '../support/server.ts';
import { startRedis, type Service } from '../support/services.ts';

const ALICE = { email: 'alice.secret@example.test', password: 'Pw-of-Alice-never-logged' };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

type LogLine = Record<string, unknown> & { level: number; msg: string };
const parsed = (server: TestServer) => server.logs.map((l) => JSON.parse(l) as LogLine);

/** A browser that also keeps every Set-Cookie header it was sent. */
class RecordingBrowser extends Browser {
  setCookies: string[] = [];
  override async request(url: string | URL, init: RequestInit = {}): Promise<Response> {
    const res = await super.request(url, init);
    this.setCookies.push(...res.headers.getSetCookie());
    return res;
  }
}

describe('operations on postgres+redis', () => {
  let server: TestServer;
  let client: { clientId: string; clientSecret: string };

  beforeAll(async () => {
    server = await startTestServer({ ...(await storageEnv('postgres+redis')), LOG_LEVEL: 'debug' });
    await server.users.create({ ...ALICE, emailVerified: true });
    const created = await server.clients.create({ name: 'Ops', redirectUris: [REDIRECT_URI] });
    client = { clientId: created.clientId, clientSecret: created.clientSecret! };
  });
  afterAll(() => server?.cleanup());

  it('/healthz answers 200 without caching', async () => {
    const res = await fetch(`${server.url}/healthz`);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('/readyz answers 200 with the database and Redis checked', async () => {
    const res = await fetch(`${server.url}/readyz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok', checks: { database: 'ok', redis: 'ok' } });
  });

  it('echoes a sane incoming X-Request-Id and replaces an insane one with a generated id', async () => {
    const id = async (incoming?: string) =>
      (
        await fetch(`${server.url}/healthz`, {
          headers: incoming === undefined ? {} : { 'x-request-id': incoming },
        })
      ).headers.get('x-request-id');
    expect(await id('trace-1234.abc_DEF')).toBe('trace-1234.abc_DEF');
    for (const insane of ['a'.repeat(500), 'has spaces in it', 'semi;colon', ''])
      expect(await id(insane)).toMatch(UUID);
    const [a, b] = [await id(), await id()];
    expect(a).toMatch(UUID);
    expect(b).not.toBe(a);
  });

  it('logs a refused request with its request id, on our pages and on the provider', async () => {
    await fetch(`${server.url}/interaction/no-such-uid`, {
      headers: { 'x-request-id': 'refused-page-42' },
    });
    await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'x-request-id': 'refused-token-43' },
    });
    const lines = parsed(server);
    expect(lines.find((l) => l.requestId === 'refused-page-42')).toMatchObject({
      msg: 'request refused',
      status: 400,
      path: '/interaction/no-such-uid',
    });
    expect(lines.find((l) => l.requestId === 'refused-token-43')).toMatchObject({
      msg: 'request refused',
      status: 400,
      path: '/token',
    });
  });

  it('never logs the email or password of a sign-in, failed or successful', async () => {
    const rp = await relyingParty(server.url, client.clientId, client.clientSecret);
    await expect(
      signIn(rp, new Browser(), server.url, { ...ALICE, password: 'Wrong-Pw-not-logged' }),
    ).rejects.toThrow(/expected the consent page/);
    expect((await signIn(rp, new Browser(), server.url, ALICE)).access_token).toBeTruthy();
    // An email in a refused path reaches the logger: it must come out masked.
    await fetch(`${server.url}/interaction/${ALICE.email}`);
    const all = server.logs.join('');
    expect(all.toLowerCase()).not.toContain(ALICE.email);
    expect(all).not.toContain(ALICE.password);
    expect(all).not.toContain('Wrong-Pw-not-logged');
    expect(all).toContain('al***@example.test');
    // The sign-ins were logged (wrong password refused, right one redirected), just not who.
    const logins = parsed(server).filter((l) =>
      /^\/interaction\/[^/]+\/login$/.test(String(l.path)),
    );
    expect(logins.map((l) => l.status)).toEqual(expect.arrayContaining([400, 303]));
  });

  it('serves the login page with a strict CSP, anti-framing, nosniff, and HttpOnly SameSite=Lax cookies', async () => {
    const browser = new RecordingBrowser();
    const rp = await relyingParty(server.url, client.clientId, client.clientSecret);
    const start = await browser.get(
      `${server.url}/auth?${new URLSearchParams({
        client_id: client.clientId,
        response_type: 'code',
        scope: 'openid',
        redirect_uri: REDIRECT_URI,
        code_challenge: 'a'.repeat(43),
        code_challenge_method: 'S256',
      })}`,
    );
    const { res } = await browser.follow(start, server.url);
    expect(await res.text()).toContain('name="password"');
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp.split(';').map((d) => d.trim())).toEqual(
      expect.arrayContaining(["default-src 'none'", "frame-ancestors 'none'", "base-uri 'none'"]),
    );
    expect(csp).not.toContain('unsafe-inline');
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    expect(res.headers.get('cache-control')).toBe('no-store');

    await signIn(rp, browser, server.url, ALICE); // sets the session cookie too
    const names = browser.setCookies.map((c) => c.split('=')[0]);
    expect(names).toEqual(expect.arrayContaining(['_interaction', '_session']));
    for (const cookie of browser.setCookies) {
      const attrs = cookie
        .toLowerCase()
        .split(';')
        .map((a) => a.trim());
      expect(attrs, cookie).toContain('httponly');
      expect(attrs, cookie).toContain('samesite=lax');
    }
  });
});

describe('readiness when Redis goes away', () => {
  let redis: Service | undefined;
  let server: TestServer | undefined;
  afterAll(async () => {
    await server?.cleanup();
    await redis?.stop();
  });

  it('answers /readyz 503 naming redis within a few seconds; the database stays ok, the outage is logged', async () => {
    redis = await startRedis();
    server = await startTestServer({
      ...(await storageEnv('postgres+redis')),
      REDIS_URL: redis.url,
    });
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    const stopping = redis;
    redis = undefined;
    await stopping.stop();

    const started = Date.now();
    const res = await fetch(`${server.url}/readyz`);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(res.status).toBe(503);
    const body = (await res.json()) as { status: string; checks: Record<string, string> };
    expect(body.status).toBe('fail');
    expect(body.checks.database).toBe('ok');
    expect(body.checks.redis).toBe('fail'); // the detail is logged, not published
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    // The connection errors go to the JSON log, not as raw stack traces on stderr.
    expect(parsed(server).some((l) => l.level >= 40 && /redis/i.test(l.msg))).toBe(true);
  });
});

describe('graceful shutdown', () => {
  it('finishes an in-flight request with 200, refuses new connections, and closes promptly', async () => {
    const server = await startTestServer(await storageEnv('embedded'));
    try {
      const m2m = await server.clients.create({
        name: 'Job',
        redirectUris: [],
        grantTypes: ['client_credentials'],
      });
      const body = 'grant_type=client_credentials';
      const auth = Buffer.from(`${m2m.clientId}:${m2m.clientSecret}`).toString('base64');
      let sendRest!: () => void;
      const inFlight = new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request(
          `${server.url}/token`,
          {
            method: 'POST',
            headers: {
              'content-type': 'application/x-www-form-urlencoded',
              'content-length': String(body.length),
              authorization: `Basic ${auth}`,
            },
          },
          (res) => {
            let text = '';
            res.on('data', (d: Buffer) => (text += d));
            res.on('end', () => resolve({ status: res.statusCode!, body: text }));
          },
        );
        req.on('error', reject);
        req.write(body.slice(0, 10)); // headers and half the body: the request is in flight
        sendRest = () => req.end(body.slice(10));
      });
      await new Promise((r) => setTimeout(r, 200));

      const closing = server.close();
      await new Promise((r) => setTimeout(r, 100));
      await expect(fetch(`${server.url}/healthz`)).rejects.toMatchObject({
        cause: { code: 'ECONNREFUSED' },
      });

      sendRest();
      const answer = await inFlight;
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.body)).toMatchObject({ token_type: 'Bearer' });
      const finished = Date.now();
      await closing;
      // Not held open until the keep-alive timeout (5 s) of the connection that just went idle.
      expect(Date.now() - finished).toBeLessThan(2000);
      await expect(fetch(`${server.url}/healthz`)).rejects.toThrow();
    } finally {
      await server.cleanup();
    }
  });
});

describe('log masking', () => {
  it('maskEmails keeps two characters of the local part and the domain', () => {
    expect(maskEmails('alice@example.com')).toBe('al***@example.com');
    expect(maskEmails('to a@b.co and Bob.Smith+tag@mail.example.org.')).toBe(
      'to a***@b.co and Bo***@mail.example.org.',
    );
    expect(maskEmails('no address here, just an @ sign')).toBe('no address here, just an @ sign');
  });

  it('the logger masks emails in messages, nested fields and errors', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const log = createLogger('info', sink);
    log.info(
      { user: { email: 'carol@example.test' }, err: new Error('no user dave@example.test') },
      'login for erin@example.test',
    );
    const line = lines.join('');
    for (const raw of ['carol@', 'dave@', 'erin@']) expect(line).not.toContain(raw);
    for (const masked of ['ca***@example.test', 'da***@example.test', 'er***@example.test'])
      expect(line).toContain(masked);
    expect(JSON.parse(line).err).toMatchObject({ type: 'Error', stack: expect.any(String) });
  });
});
