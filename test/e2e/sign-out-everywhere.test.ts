import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser } from '../support/browser.ts';
import {
  REDIRECT_URI,
  relyingParty,
  signIn,
  silentAuthorizationUrl,
} from '../support/relying-party.ts';
import { STORAGES, startTestServer, storageEnv, type TestServer } from '../support/server.ts';

const USER = { email: 'everywhere@example.test', password: 'one password for all devices' };
const OTHER = { email: 'bystander@example.test', password: 'another password entirely' };

describe.each(STORAGES)('signing an account out everywhere on %s storage', (storage) => {
  let server: TestServer;
  let rp: oidc.Configuration;
  let userId: string;
  beforeAll(async () => {
    server = await startTestServer(await storageEnv(storage));
    userId = (await server.users.create({ ...USER, emailVerified: true })).id;
    await server.users.create({ ...OTHER, emailVerified: true });
    const client = await server.clients.create({
      name: 'Everywhere app',
      redirectUris: [REDIRECT_URI],
    });
    rp = await relyingParty(server.url, client.clientId, client.clientSecret);
  });
  afterAll(() => server?.cleanup());

  const hasSession = async (browser: Browser) => {
    const { url } = await browser.follow(
      await browser.get(await silentAuthorizationUrl(rp)),
      server.url,
    );
    return url.searchParams.has('code');
  };

  it('ends every session and revokes every refresh token of that account only', async () => {
    const laptop = new Browser();
    const phone = new Browser();
    const bystander = new Browser();
    const onLaptop = await signIn(rp, laptop, server.url, USER);
    const onPhone = await signIn(rp, phone, server.url, USER);
    const theirs = await signIn(rp, bystander, server.url, OTHER);
    expect(await hasSession(laptop)).toBe(true);

    expect((await server.signOut.endSessions(userId)).ended).toBe(2);
    expect(await server.signOut.revokeGrants(userId)).toBeGreaterThanOrEqual(1);

    expect(await hasSession(laptop)).toBe(false);
    expect(await hasSession(phone)).toBe(false);
    for (const tokens of [onLaptop, onPhone]) {
      await expect(oidc.refreshTokenGrant(rp, tokens.refresh_token!)).rejects.toMatchObject({
        error: 'invalid_grant',
      });
      expect((await oidc.tokenIntrospection(rp, tokens.access_token)).active).toBe(false);
    }
    expect(await hasSession(bystander)).toBe(true);
    expect((await oidc.refreshTokenGrant(rp, theirs.refresh_token!)).access_token).toBeTruthy();
  });

  it('keeps what the user consented to: signing in again does not ask', async () => {
    const shown: string[] = [];
    await signIn(rp, new Browser(), server.url, { ...USER, params: { prompt: '' }, shown });
    expect(shown).toEqual(['login']);
  });

  it('never moves the sign-out time back: of two sign-outs, the later time stands', async () => {
    // A sign-out that computed its time later may commit first; the earlier one then must not
    // let back in what the later one ended.
    const later = Math.floor(Date.now() / 1000) + 100;
    await server.db('users').where({ id: userId }).update({ sessions_valid_from: later });
    await server.signOut.endSessions(userId);
    const { sessions_valid_from: after } = await server.db('users').where({ id: userId }).first();
    expect(Number(after)).toBe(later);
    await server.db('users').where({ id: userId }).update({ sessions_valid_from: 0 });
  });
});
