import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SIGNING_ALGS } from '../../server/keys/store.ts';
import { Browser } from '../support/browser.ts';
import { startMailApp, type MailApp } from '../support/mail-app.ts';
import { linkFromMail } from '../support/mailbox.ts';
import { startPrometheus, type Prometheus } from '../support/prometheus.ts';
import {
  signIn,
  tokenRequest,
  tryLogin,
  type ClientCredentials,
} from '../support/relying-party.ts';

const USER = { email: 'mia.metrics@example.test', password: 'a long enough password 1' };
const VICTIM = { email: 'gus.guessed@example.test', password: 'the right long password 2' };
const WRONG = 'a wrong password of some length';

describe('Prometheus metrics, scraped by a real Prometheus', () => {
  let app: MailApp;
  let prometheus: Prometheus;
  let client: ClientCredentials;

  beforeAll(async () => {
    app = await startMailApp({
      clientName: 'Metrics app',
      user: USER,
      env: {
        METRICS_PORT: '0',
        METRICS_HOST: '127.0.0.1',
        REFRESH_REUSE_GRACE_SECONDS: '0',
        // 5 failures lock; the 6th (locked) counts too; the 7th meets the account's limit.
        RATE_LIMIT_LOGIN_ACCOUNT: '6/15m',
      },
    });
    await app.server.users.create({ ...VICTIM, emailVerified: true });
    const created = await app.server.clients.create({
      name: 'Service',
      redirectUris: [],
      grantTypes: ['client_credentials'],
    });
    client = { clientId: created.clientId, clientSecret: created.clientSecret! };
    prometheus = await startPrometheus([new URL(app.server.metricsUrl!).host]);
  });
  afterAll(async () => {
    await prometheus?.stop();
    await app?.stop();
  });

  it('is served on its own listener, not on the public port', async () => {
    expect((await fetch(`${app.server.url}/metrics`)).status).toBe(404);
    const res = await fetch(app.server.metricsUrl!);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    expect(text).toContain('# TYPE latchkey_sign_in_attempts_total counter');
    expect(text).toContain('latchkey_nodejs_eventloop_lag_seconds');
    // Never an address, an email or an id as a label value.
    expect(text).not.toMatch(/@example\.test|127\.0\.0\.1|\/interaction\/[A-Za-z0-9_-]{10,}/);
  });

  it('counts sign-ins, a lockout, a rate-limit refusal, tokens and a refresh reuse', async () => {
    const tokens = await signIn(app.rp, new Browser(), app.server.url, USER);
    const rotated = await tokenRequest(app.server.url, rpClient(app), {
      grant_type: 'refresh_token',
      refresh_token: tokens.refresh_token!,
    });
    expect(rotated.status).toBe(200);
    const reused = await tokenRequest(app.server.url, rpClient(app), {
      grant_type: 'refresh_token',
      refresh_token: tokens.refresh_token!,
    });
    expect(reused.body.error).toBe('invalid_grant');
    const cc = await tokenRequest(app.server.url, client, { grant_type: 'client_credentials' });
    expect(cc.status).toBe(200);
    const introspected = await fetch(`${app.server.url}/token/introspection`, {
      method: 'POST',
      headers: {
        authorization: basic(client),
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ token: String(cc.body.access_token) }),
    });
    expect(((await introspected.json()) as { active: boolean }).active).toBe(true);

    const mailsBefore = app.smtp.messages.length;
    expect((await tryLogin(app.rp, app.server.url, 'nobody@example.test', WRONG)).status).toBe(400);
    const answers: number[] = [];
    for (let i = 1; i <= 7; i++)
      answers.push(
        (await tryLogin(app.rp, app.server.url, VICTIM.email, i === 6 ? VICTIM.password : WRONG))
          .status,
      );
    expect(answers).toEqual([400, 400, 400, 400, 400, 400, 429]);
    // The lock's email goes out from the outbox.
    await linkFromMail(app.smtp, VICTIM.email, mailsBefore, /\/unlock\?token=/);

    await prometheus.scraped();
    const value = (promql: string) => prometheus.query(promql);
    const signIns = (outcome: string) =>
      value(`sum(latchkey_sign_in_attempts_total{method="password",outcome="${outcome}"})`);
    expect(await signIns('success')).toBe(1);
    expect(await signIns('wrong_password')).toBe(5);
    expect(await signIns('unknown_account')).toBe(1);
    expect(await signIns('locked')).toBe(1);
    expect(await signIns('rate_limited')).toBe(1);
    expect(await value('latchkey_lockouts_total')).toBe(1);
    expect(await value('latchkey_rate_limit_refusals_total{limit="login_account"}')).toBe(1);
    expect(
      await value('latchkey_tokens_issued_total{grant_type="authorization_code",format="opaque"}'),
    ).toBe(1);
    expect(
      await value('latchkey_tokens_issued_total{grant_type="client_credentials",format="opaque"}'),
    ).toBe(1);
    expect(await value('latchkey_refresh_token_rotations_total')).toBe(1);
    expect(await value('latchkey_refresh_token_reuse_total')).toBe(1);
    expect(await value('latchkey_introspections_total{result="active"}')).toBe(1);
    expect(await value('latchkey_mail_sent_total')).toBeGreaterThanOrEqual(1);
    // Token requests: the code, the rotation, the reuse (4xx) and client_credentials.
    expect(
      await value(
        'latchkey_http_request_duration_seconds_count{route="/token",status_class="2xx"}',
      ),
    ).toBe(3);
    expect(
      await value(
        'latchkey_http_request_duration_seconds_count{route="/token",status_class="4xx"}',
      ),
    ).toBe(1);
    expect(
      await value(
        'latchkey_http_request_duration_seconds_count{route="/interaction/:uid/login",status_class="4xx"}',
      ),
    ).toBe(8); // the unknown account, the victim's six 400s and the 429
    // State sampled at scrape time.
    expect(await value('latchkey_readiness_check_up{check="all"}')).toBe(1);
    expect(await value('latchkey_redis_connected')).toBe(1);
    // One key per algorithm signs.
    expect(await value('latchkey_signing_keys{state="active"}')).toBe(SIGNING_ALGS.length);
    expect(await value('latchkey_mail_outbox_messages{status="failed"}')).toBe(0);
    expect(await value('latchkey_argon2_wait_seconds_count')).toBeGreaterThan(8);
  });
});

const basic = (c: ClientCredentials) =>
  `Basic ${Buffer.from(`${c.clientId}:${c.clientSecret}`).toString('base64')}`;

function rpClient(app: MailApp): ClientCredentials {
  const { client_id, client_secret } = app.rp.clientMetadata();
  return { clientId: client_id, clientSecret: String(client_secret) };
}
