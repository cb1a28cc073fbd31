import type * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { activityOf } from '../../server/users/session-activity.ts';
import { Browser } from '../support/browser.ts';
import { REDIRECT_URI, relyingParty, signIn } from '../support/relying-party.ts';
import { STORAGES, startTestServer, storageEnv, type TestServer } from '../support/server.ts';

const USER = { email: 'browsing@example.test', password: 'browsing the account pages' };
const AGENT = 'Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0';
const now = () => Math.floor(Date.now() / 1000);

describe.each(STORAGES)("a session's last activity on %s storage", (storage) => {
  let server: TestServer;
  let rp: oidc.Configuration;
  let userId: string;
  beforeAll(async () => {
    server = await startTestServer(await storageEnv(storage));
    userId = (await server.users.create({ ...USER, emailVerified: true })).id;
    const client = await server.clients.create({ name: 'Some app', redirectUris: [REDIRECT_URI] });
    rp = await relyingParty(server.url, client.clientId, client.clientSecret);
  });
  afterAll(() => server?.cleanup());

  const onlySession = async () => {
    const sessions = await server.adapter.sessionsOf(userId);
    expect(sessions).toHaveLength(1);
    return sessions[0]!;
  };
  /** Stores the session as if the browser had last been active `secondsAgo`, from elsewhere. */
  const backdate = async (secondsAgo: number) => {
    const { id, payload } = await onlySession();
    const at = now() - secondsAgo;
    const activity = { at, ip: '198.51.100.9', userAgent: 'an older browser' };
    await server
      .adapter('Session')
      .upsert(id, { ...payload, latchkeyActivity: activity }, Number(payload.exp) - now());
    return at;
  };

  it('notes a visit to the account pages when the last was 5 minutes ago or more, not sooner', async () => {
    const browser = new Browser({ userAgent: AGENT });
    await signIn(rp, browser, server.url, USER);
    const expiry = (await onlySession()).payload.exp;

    await backdate(10 * 60);
    expect((await browser.get(`${server.url}/account`)).status).toBe(200);
    const noted = activityOf((await onlySession()).payload)!;
    expect(noted.at).toBeGreaterThanOrEqual(now() - 5);
    expect(noted).toMatchObject({ ip: '127.0.0.1', userAgent: AGENT });
    // Noting activity does not stretch the session's life.
    expect((await onlySession()).payload.exp).toBe(expiry);

    const recent = await backdate(60);
    for (const path of ['/account', '/account/sessions', '/account/activity'])
      expect((await browser.get(`${server.url}${path}`)).status).toBe(200);
    expect(activityOf((await onlySession()).payload)).toMatchObject({
      at: recent,
      ip: '198.51.100.9',
    });
  });
});
