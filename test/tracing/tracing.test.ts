import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser } from '../support/browser.ts';
import { startChildServer, type ChildServer } from '../support/child-server.ts';
import {
  startOtlpReceiver,
  type OtlpReceiver,
  type ReceivedSpan,
} from '../support/otlp-receiver.ts';
import { askForResetLink } from '../support/password-reset.ts';
import { REDIRECT_URI, relyingParty, tryLogin } from '../support/relying-party.ts';
import { startTestServer, storageEnv } from '../support/server.ts';
import { SEEDED, startSlapd, type Slapd } from '../support/slapd.ts';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp.ts';

const USER = { email: 'tracy.traced@example.test', password: 'a long enough password 7' };
// Loopback aliases: the server trusts the proxy at PROXY, not the client at 127.0.0.1.
const PROXY = '127.0.0.2';
const SERVER_KIND = 2;

const isHttpServer = (s: ReceivedSpan) => s.kind === SERVER_KIND && s.scope.endsWith('-http');

/** Whether `span` descends from `ancestor` through the parent links received. */
function descendsFrom(span: ReceivedSpan, ancestor: ReceivedSpan, spans: ReceivedSpan[]): boolean {
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  for (let at = span.parentSpanId; at; at = byId.get(at)?.parentSpanId)
    if (at === ancestor.spanId) return true;
  return false;
}

/** A GET from `localAddress` with the given headers; resolves with the status. */
function getFrom(url: string, localAddress: string, headers: Record<string, string>) {
  return new Promise<number>((resolve, reject) => {
    request(url, { localAddress, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    })
      .on('error', reject)
      .end();
  });
}

describe('OpenTelemetry traces, sent to an OTLP/HTTP receiver', () => {
  let receiver: OtlpReceiver;
  let server: ChildServer;
  let slapd: Slapd;
  let smtp: TestSmtpServer;
  let env: Record<string, string>;
  let clientId: string;
  let clientSecret: string;

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    slapd = await startSlapd();
    smtp = await startSmtpServer();
    env = await storageEnv('postgres+redis');
    // The schema, a user and a client, made in process before the traced server starts.
    const setup = await startTestServer(env);
    await setup.users.create({ ...USER, emailVerified: true });
    const client = await setup.clients.create({ name: 'Traced app', redirectUris: [REDIRECT_URI] });
    ({ clientId } = client);
    clientSecret = client.clientSecret!;
    await setup.close();
    server = await startChildServer({
      ...env,
      ...slapd.env(),
      MAIL_TRANSPORT: 'smtp',
      SMTP_HOST: '127.0.0.1',
      SMTP_PORT: String(smtp.port),
      SMTP_SECURITY: 'none',
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
      OTEL_SERVICE_NAME: 'latchkey-under-test',
      // Export at once rather than every 5 s.
      OTEL_BSP_SCHEDULE_DELAY: '50',
      TRUST_PROXY: PROXY,
      LOG_LEVEL: 'debug',
    });
  });
  afterAll(async () => {
    // The SDK's shutdown (the last batch sent) is part of a clean stop.
    if (server) expect(await server.stop('SIGTERM')).toBe(0);
    await receiver?.close();
    await smtp?.stop();
    await slapd?.cleanup();
    if (env) rmSync(env.DATA_DIR!, { recursive: true, force: true });
  });

  it('links the PostgreSQL, Redis and argon2 spans of a sign-in to its HTTP request span, named by route', async () => {
    const rp = await relyingParty(server.url, clientId, clientSecret);
    const login = await tryLogin(rp, server.url, USER.email, USER.password);
    expect(login.status).toBe(303);

    const loginSpan = (spans: ReceivedSpan[]) =>
      spans.find(
        (s) =>
          isHttpServer(s) &&
          s.attributes['http.request.method'] === 'POST' &&
          String(s.attributes['url.path']).endsWith('/login'),
      );
    const under = (spans: ReceivedSpan[], match: (s: ReceivedSpan) => boolean) => {
      const root = loginSpan(spans);
      return root ? spans.filter((s) => match(s) && descendsFrom(s, root, spans)) : [];
    };
    const postgres = (s: ReceivedSpan) =>
      s.attributes['db.system.name'] === 'postgresql' || s.attributes['db.system'] === 'postgresql';
    const redis = (s: ReceivedSpan) =>
      s.attributes['db.system.name'] === 'redis' || s.attributes['db.system'] === 'redis';
    const argon2 = (s: ReceivedSpan) => s.name === 'argon2.verify';
    const spans = await receiver.waitFor((all) =>
      [postgres, redis, argon2].every((match) => under(all, match).length > 0),
    );
    const root = loginSpan(spans)!;
    // Named by route template, oidc-provider's routes too; never by a path with an id in it.
    expect(root.name).toBe('POST /interaction/:uid/login');
    expect(spans.filter(isHttpServer).map((s) => s.name)).toContain('GET /auth');
    expect(root.parentSpanId ?? '').toBe('');
    expect(under(spans, argon2)).toHaveLength(1);
    // A Redis span names the command, never its keys (session and token ids) or values.
    for (const span of under(spans, redis))
      expect(span.attributes['db.query.text'] ?? span.attributes['db.statement']).toMatch(
        /^[a-z]+$/i,
      );
  });

  it('continues the trace a trusted proxy sends in traceparent (W3C Trace Context)', async () => {
    const traceId = randomBytes(16).toString('hex');
    const parentId = randomBytes(8).toString('hex');
    const requestId = `trusted-${randomBytes(4).toString('hex')}`;
    const status = await getFrom(`${server.url}/healthz`, PROXY, {
      traceparent: `00-${traceId}-${parentId}-01`,
      'x-request-id': requestId,
    });
    expect(status).toBe(200);
    const spans = await receiver.waitFor((all) => all.some((s) => s.traceId === traceId));
    const span = spans.find((s) => s.traceId === traceId)!;
    expect(isHttpServer(span)).toBe(true);
    expect(span.parentSpanId).toBe(parentId);
    // The trace id beside the request id in the request's log line.
    const line = server
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.requestId === requestId);
    expect(line).toMatchObject({ requestId, traceId });
  });

  it('starts a new trace when anyone else sends traceparent', async () => {
    const traceId = randomBytes(16).toString('hex');
    const parentId = randomBytes(8).toString('hex');
    const path = `/healthz?untrusted=${randomBytes(4).toString('hex')}`;
    const status = await getFrom(`${server.url}${path}`, '127.0.0.1', {
      traceparent: `00-${traceId}-${parentId}-01`,
    });
    expect(status).toBe(200);
    const spans = await receiver.waitFor((all) =>
      all.some(
        (s) => isHttpServer(s) && String(s.attributes['url.query']).includes(path.split('?')[1]!),
      ),
    );
    const span = spans.find(
      (s) => isHttpServer(s) && String(s.attributes['url.query']).includes(path.split('?')[1]!),
    )!;
    expect(span.traceId).not.toBe(traceId);
    expect(span.parentSpanId ?? '').toBe('');
    expect(spans.some((s) => s.traceId === traceId)).toBe(false);
  });
  it("spans a directory sign-in: the LDAP search and the user's bind, under its request", async () => {
    const rp = await relyingParty(server.url, clientId, clientSecret);
    const alice = SEEDED.alice;
    expect((await tryLogin(rp, server.url, alice.uid, alice.password)).status).toBe(303);
    const ldapUnderLogin = (all: ReceivedSpan[], name: string) =>
      all.filter(
        (s) =>
          s.name === name &&
          all.some(
            (root) =>
              root.name === 'POST /interaction/:uid/login' &&
              root.traceId === s.traceId &&
              descendsFrom(s, root, all),
          ),
      );
    const spans = await receiver.waitFor(
      (all) =>
        ldapUnderLogin(all, 'ldap.search').length > 0 &&
        ldapUnderLogin(all, 'ldap.bind').length > 0,
    );
    // Neither the DN nor the filter: both name the user.
    for (const span of [
      ...ldapUnderLogin(spans, 'ldap.search'),
      ...ldapUnderLogin(spans, 'ldap.bind'),
    ])
      expect(JSON.stringify(span.attributes)).not.toContain('alice');
  });

  it('spans an SMTP delivery, with the server and never the recipient', async () => {
    const rp = await relyingParty(server.url, clientId, clientSecret);
    await askForResetLink({ server, rp }, new Browser(), USER.email);
    await smtp.waitForMessage((mail) => JSON.stringify(mail.to).includes(USER.email));
    const spans = await receiver.waitFor((all) => all.some((s) => s.name === 'smtp.send'));
    const send = spans.find((s) => s.name === 'smtp.send')!;
    expect(send.attributes['server.address']).toBe('127.0.0.1');
    expect(Number(send.attributes['server.port'])).toBe(smtp.port);
    expect(JSON.stringify(spans)).not.toContain(USER.email);
  });
});
