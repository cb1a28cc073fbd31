import { rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { Browser } from '../support/browser.ts';
import { startChildServer } from '../support/child-server.ts';
import { leaks } from '../support/log-leaks.ts';
import {
  REDIRECT_URI,
  authorizationRequest,
  relyingParty,
  signIn,
  silentAuthorizationUrl,
  isActive,
  tokenRequest,
} from '../support/relying-party.ts';
import { startTestServer, storageEnv, type TestServer } from '../support/server.ts';
import { freePort } from '../support/services.ts';

// The embedded server keeps short-lived state in memory and writes it behind to PGlite
// (adapters/write-behind.ts). What one request puts there must not stop the rest being written,
// a failed write must not show secrets, and what a crash loses must fail closed.

const USER = { email: 'behind@example.test', password: 'a long enough password' };

describe('embedded short-lived state written behind', () => {
  const dataDirs: string[] = [];
  afterEach(() => {
    for (const dir of dataDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  async function setUp() {
    const env = await storageEnv('embedded');
    dataDirs.push(env.DATA_DIR!);
    env.PORT = String(await freePort());
    const server = await startTestServer(env);
    await server.users.create({ ...USER, emailVerified: true });
    const client = await server.clients.create({ name: 'Behind', redirectUris: [REDIRECT_URI] });
    return { env, server, client };
  }

  it('an authorization request with a NUL in its parameters does not stop sessions and tokens of others being written', async () => {
    const { env, server, client } = await setUp();
    let rp = await relyingParty(server.url, client.clientId, client.clientSecret);
    // Unauthenticated: PostgreSQL's jsonb cannot hold \u0000, and the Interaction holds `state`.
    const { url } = await authorizationRequest(rp, { state: 'x\u0000y' });
    await fetch(url, { redirect: 'manual' });

    const browser = new Browser();
    const tokens = await signIn(rp, browser, server.url, USER);
    // A stop writes everything first (server.ts).
    await server.close();

    const next: TestServer = await startTestServer(env);
    try {
      rp = await relyingParty(next.url, client.clientId, client.clientSecret);
      expect(await isActive(rp, tokens.access_token)).toBe(true);
      const { url: back } = await browser.follow(
        await browser.get(await silentAuthorizationUrl(rp)),
        next.url,
      );
      expect(back.searchParams.get('code')).toBeTruthy();
    } finally {
      await next.close();
    }
  });

  it('a write of short-lived state that fails does not log the access tokens it held', async () => {
    const { server, client } = await setUp();
    try {
      // The database refuses the rows of one model, as a full disk or a bad row would.
      await server.db.raw(`
        CREATE FUNCTION test_refuse_token() RETURNS trigger AS $$
        BEGIN
          IF NEW.model = 'AccessToken' THEN RAISE EXCEPTION 'refused by the test'; END IF;
          RETURN NEW;
        END $$ LANGUAGE plpgsql`);
      await server.db.raw(
        'CREATE TRIGGER test_refuse_token BEFORE INSERT ON oidc_payloads FOR EACH ROW EXECUTE FUNCTION test_refuse_token()',
      );
      const browser = new Browser();
      const rp = await relyingParty(server.url, client.clientId, client.clientSecret);
      const tokens = await signIn(rp, browser, server.url, USER);
      await expect
        .poll(() => server.logs.some((line) => line.includes('not yet written')))
        .toBe(true);
      // An opaque access token's id is the token itself; codes and session ids are as bad.
      expect(leaks(server.logs, [{ what: 'access token', value: tokens.access_token }])).toEqual(
        [],
      );
    } finally {
      await server.db.raw('DROP TRIGGER IF EXISTS test_refuse_token ON oidc_payloads');
      await server.close();
    }
  });

  it('an authorization code exchanged just before the process is killed cannot be exchanged again after the restart', async () => {
    const { env, server, client } = await setUp();
    await server.close();
    const port = Number(env.PORT);
    const doomed = await startChildServer(env, port);
    // The token request the relying party sends: the code and its PKCE verifier.
    let exchange: Record<string, string> | undefined;
    const capture: typeof fetch = async (input, init) => {
      const body = init?.body;
      if (body instanceof URLSearchParams && body.get('grant_type') === 'authorization_code') {
        exchange = Object.fromEntries(body);
        // Longer than the server waits before writing (server.ts): the code itself is stored.
        await sleep(1000);
      }
      return fetch(input, init);
    };
    const rp = await relyingParty(doomed.url, client.clientId, client.clientSecret, capture);
    const tokens = await signIn(rp, new Browser(), doomed.url, USER);
    // At once: a crash can come at any moment.
    await doomed.stop('SIGKILL');
    expect(tokens.refresh_token).toBeTruthy();
    expect(exchange?.code).toBeTruthy();

    const next = await startChildServer(env, port);
    try {
      const credentials = { clientId: client.clientId, clientSecret: client.clientSecret! };
      const replay = await tokenRequest(next.url, credentials, {
        grant_type: 'authorization_code',
        code: exchange!.code!,
        code_verifier: exchange!.code_verifier!,
        redirect_uri: REDIRECT_URI,
      });
      expect(replay.status).toBe(400);
      expect(replay.body.error).toBe('invalid_grant');
    } finally {
      await next.stop('SIGTERM');
    }
  });
});
