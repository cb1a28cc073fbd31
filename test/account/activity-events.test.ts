import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, hiddenInput } from '../support/browser.ts';
import { POST_LOGOUT_URI, REDIRECT_URI, relyingParty, signIn } from '../support/relying-party.ts';
import { STORAGES, startTestServer, storageEnv, type TestServer } from '../support/server.ts';

const USER = { email: 'watchful@example.test', password: 'watching my own activity' };
const FIREFOX = 'Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0';
const SAFARI =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1';

describe.each(STORAGES)('the security activity page on %s storage', (storage) => {
  let server: TestServer;
  let rp: oidc.Configuration;
  let userId: string;
  beforeAll(async () => {
    server = await startTestServer({
      ...(await storageEnv(storage)),
      // A spent refresh token presented again is reuse at once, not a concurrent refresh.
      REFRESH_REUSE_GRACE_SECONDS: '0',
    });
    userId = (await server.users.create({ ...USER, emailVerified: true })).id;
    const client = await server.clients.create({
      name: 'Weather Diary',
      redirectUris: [REDIRECT_URI],
      postLogoutRedirectUris: [POST_LOGOUT_URI],
    });
    rp = await relyingParty(server.url, client.clientId, client.clientSecret);
  });
  afterAll(() => server?.cleanup());

  /** The user's audit rows of `type`, once there are `count` (some are written in the background). */
  const rowsOf = async (type: string, count: number) => {
    const rows = () => server.db('audit_events').where({ type, subject: userId }).orderBy('id');
    for (let i = 0; i < 100 && (await rows()).length < count; i++)
      await new Promise((r) => setTimeout(r, 50));
    return rows();
  };
  const activity = async (browser: Browser) => {
    const res = await browser.get(`${server.url}/account/activity`);
    expect(res.status).toBe(200);
    return (await res.text()).replaceAll('&#39;', "'");
  };

  it('shows a sign-in from a new device, and not the first device nor a known one', async () => {
    const laptop = new Browser({ userAgent: FIREFOX });
    await signIn(rp, laptop, server.url, USER);
    await signIn(rp, new Browser({ userAgent: FIREFOX }), server.url, USER);
    const phone = new Browser({ userAgent: SAFARI });
    await signIn(rp, phone, server.url, USER);

    const rows = await rowsOf('new_device_sign_in', 1);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ actor_type: 'user', ip: '127.0.0.1', user_agent: SAFARI });
    const html = await activity(laptop);
    expect(html).toContain('Signed in from a new device: Mobile Safari on iOS');
    expect(html).not.toContain('new device: Firefox');
  });

  it('shows the access of an app ended: revoked by the app, at sign-out, and for a reused refresh token', async () => {
    const revoked = await signIn(rp, new Browser({ userAgent: FIREFOX }), server.url, USER);
    await oidc.tokenRevocation(rp, revoked.refresh_token!);
    expect(await rowsOf('grant_revoked', 1)).toHaveLength(1);

    const reused = await signIn(rp, new Browser({ userAgent: FIREFOX }), server.url, USER);
    await oidc.refreshTokenGrant(rp, reused.refresh_token!);
    await expect(oidc.refreshTokenGrant(rp, reused.refresh_token!)).rejects.toMatchObject({
      error: 'invalid_grant',
    });
    expect(await rowsOf('grant_revoked', 2)).toHaveLength(2);

    // Without offline access an app's grant ends with the session it signed in with.
    const leaving = new Browser({ userAgent: FIREFOX });
    const signedOut = await signIn(rp, leaving, server.url, { ...USER, scope: 'openid email' });
    const end = oidc.buildEndSessionUrl(rp, {
      id_token_hint: signedOut.id_token!,
      post_logout_redirect_uri: POST_LOGOUT_URI,
    });
    const confirm = await (await leaving.follow(await leaving.get(end), server.url)).res.text();
    await leaving.follow(
      await leaving.post(new URL(/action="([^"]+)"/.exec(confirm)![1]!, server.url), {
        xsrf: hiddenInput(confirm, 'xsrf'),
        logout: 'yes',
      }),
      server.url,
    );
    const rows = await rowsOf('grant_revoked', 3);
    expect(rows.map((r) => JSON.parse(JSON.stringify(r.detail)).cause)).toEqual([
      'app_revoked',
      'reused',
      'sign_out',
    ]);

    const viewer = new Browser({ userAgent: FIREFOX });
    await signIn(rp, viewer, server.url, USER);
    const html = await activity(viewer);
    expect(html).toContain('Signed out of Weather Diary: it gave up its access');
    expect(html).toContain(
      'The access of Weather Diary was ended: an old refresh token or sign-in code was used again',
    );
    expect(html).toContain('Signed out of Weather Diary: its access ended');
  });

  it('words the end of all other sessions', async () => {
    const keep = new Browser({ userAgent: FIREFOX });
    await signIn(rp, keep, server.url, USER);
    const page = await (await keep.get(`${server.url}/account/sessions`)).text();
    const ended = await keep.post(`${server.url}/account/sessions/end-others`, {
      csrf: hiddenInput(page, 'csrf'),
    });
    expect(ended.status).toBe(303);
    expect(await activity(keep)).toContain('Ended the other sessions');
  });
});
