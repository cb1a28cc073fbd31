import { rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeProtectedHeader } from 'jose';
import * as oidc from 'openid-client';
import { describe, expect, it } from 'vitest';
import { Browser } from '../support/browser.ts';
import { startChildServer } from '../support/child-server.ts';
import {
  REDIRECT_URI,
  relyingParty,
  signIn,
  silentAuthorizationUrl,
  isActive,
} from '../support/relying-party.ts';
import { STORAGES, startTestServer, storageEnv } from '../support/server.ts';
import { freePort } from '../support/services.ts';

const USER = { email: 'restart@example.test', password: 'a long enough password' };

describe.each(STORAGES)('restart on %s storage', (storage) => {
  it('keeps users, clients, keys, sessions and refresh tokens across a stop and start', async () => {
    const env = await storageEnv(storage);
    const first = await startTestServer(env);
    const port = Number(new URL(first.url).port);
    await first.users.create({ ...USER, emailVerified: true });
    const client = await first.clients.create({
      name: 'Restart app',
      redirectUris: [REDIRECT_URI],
    });
    const browser = new Browser();
    const firstRp = await relyingParty(first.url, client.clientId, client.clientSecret);
    const tokens = await signIn(firstRp, browser, first.url, USER);
    const kid = decodeProtectedHeader(tokens.id_token!).kid;
    await first.close();

    // The second life is a separate process on the same storage, stopped with SIGTERM.
    const second = await startChildServer(env, port);
    try {
      const rp = await relyingParty(second.url, client.clientId, client.clientSecret);
      expect(await isActive(rp, tokens.access_token)).toBe(true);
      const refreshed = await oidc.refreshTokenGrant(rp, tokens.refresh_token!);
      expect(refreshed.access_token).toBeTruthy();
      expect(decodeProtectedHeader(refreshed.id_token!).kid).toBe(kid);

      const silent = await silentAuthorizationUrl(rp);
      const { url } = await browser.follow(await browser.get(silent), second.url);
      expect(url.searchParams.get('error')).toBeNull();
      expect(url.searchParams.get('code')).toBeTruthy();
    } finally {
      expect(await second.stop('SIGTERM')).toBe(0);
      rmSync(env.DATA_DIR!, { recursive: true, force: true });
    }
  });

  it('keeps what a killed process had written a moment before it died', async () => {
    const env = await storageEnv(storage);
    const setup = await startTestServer(env);
    await setup.users.create({ ...USER, emailVerified: true });
    const client = await setup.clients.create({ name: 'Kill app', redirectUris: [REDIRECT_URI] });
    await setup.close();

    const port = await freePort();
    const doomed = await startChildServer(env, port);
    const browser = new Browser();
    let rp = await relyingParty(doomed.url, client.clientId, client.clientSecret);
    const tokens = await signIn(rp, browser, doomed.url, USER);
    // Longer than the embedded server waits before writing short-lived state (server.ts).
    await sleep(1000);
    await doomed.stop('SIGKILL');

    const next = await startChildServer(env, port);
    try {
      rp = await relyingParty(next.url, client.clientId, client.clientSecret);
      expect(await isActive(rp, tokens.access_token)).toBe(true);
      const silent = await silentAuthorizationUrl(rp);
      const { url } = await browser.follow(await browser.get(silent), next.url);
      expect(url.searchParams.get('code')).toBeTruthy();
      expect((await oidc.refreshTokenGrant(rp, tokens.refresh_token!)).access_token).toBeTruthy();
    } finally {
      expect(await next.stop('SIGTERM')).toBe(0);
      rmSync(env.DATA_DIR!, { recursive: true, force: true });
    }
  });
});
