import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, hiddenInput } from '../support/browser.ts';
import {
  REDIRECT_URI,
  relyingParty,
  signIn,
  silentAuthorizationUrl,
} from '../support/relying-party.ts';
import { STORAGES, startTestServer, storageEnv, type TestServer } from '../support/server.ts';

const USER = { email: 'three.browsers@example.test', password: 'three browsers one account' };
const AGENTS = {
  laptop:
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
  desktop: 'Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0',
  phone:
    'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1',
};

/** The part of the sessions page about the session described as `device`. */
function sessionItem(html: string, device: string): string {
  const item = html.split('<li class="session').find((part) => part.includes(device));
  if (!item) throw new Error(`no session of ${device} in the page`);
  return item.split('</li>')[0]!;
}

describe.each(STORAGES)("the account's sessions on %s storage", (storage) => {
  let server: TestServer;
  let rp: oidc.Configuration;
  let userId: string;
  beforeAll(async () => {
    server = await startTestServer(await storageEnv(storage));
    userId = (await server.users.create({ ...USER, name: 'Tri Browser', emailVerified: true })).id;
    const client = await server.clients.create({
      name: 'Sessions app',
      redirectUris: [REDIRECT_URI],
    });
    rp = await relyingParty(server.url, client.clientId, client.clientSecret);
  });
  afterAll(() => server?.cleanup());

  /** Whether the browser still has a session: prompt=none answers a code, or login_required. */
  const silent = async (browser: Browser) => {
    const { url } = await browser.follow(
      await browser.get(await silentAuthorizationUrl(rp)),
      server.url,
    );
    return url.searchParams.get('code') ? 'signed in' : url.searchParams.get('error');
  };
  /** The next refresh token (they rotate), or undefined when the token is refused. */
  const refresh = async (refreshToken: string) => {
    try {
      return (await oidc.refreshTokenGrant(rp, refreshToken)).refresh_token;
    } catch (err) {
      expect(err).toMatchObject({ error: 'invalid_grant' });
      return undefined;
    }
  };
  const page = async (browser: Browser, path: string) => {
    const res = await browser.get(`${server.url}${path}`);
    expect(res.status).toBe(200);
    return res.text();
  };
  const sessionCookie = (browser: Browser) =>
    (browser as unknown as { cookies: Map<string, { value: string }> }).cookies.get('_session|/')
      ?.value;

  it('sends a browser that is not signed in to sign in first, for the home and the sessions', async () => {
    for (const path of ['/account', '/account/sessions']) {
      const res = await new Browser().get(`${server.url}${path}`);
      expect(res.status).toBe(303);
      expect(new URL(res.headers.get('location')!, server.url).pathname).toBe('/auth');
    }
  });

  it('lists three browsers, ends one (signed out, its refresh token fails), then all others', async () => {
    const laptop = new Browser({ userAgent: AGENTS.laptop });
    const desktop = new Browser({ userAgent: AGENTS.desktop });
    const phone = new Browser({ userAgent: AGENTS.phone });
    const onLaptop = await signIn(rp, laptop, server.url, USER);
    const onDesktop = await signIn(rp, desktop, server.url, USER);
    const onPhone = await signIn(rp, phone, server.url, USER);

    const listed = await page(laptop, '/account/sessions');
    expect(listed.match(/<li class="session/g)).toHaveLength(3);
    expect(sessionItem(listed, 'Chrome on Windows')).toContain('This device');
    expect(sessionItem(listed, 'Firefox on Linux')).not.toContain('This device');
    expect(sessionItem(listed, 'Safari on iOS')).toContain('127.0.0.1');
    // The handle in the forms is not the cookie's value, which would let a reader take the session.
    for (const browser of [laptop, desktop, phone])
      expect(listed).not.toContain(sessionCookie(browser));

    const csrf = hiddenInput(listed, 'csrf');
    const ended = await laptop.post(`${server.url}/account/sessions/end`, {
      csrf,
      session: hiddenInput(sessionItem(listed, 'Firefox on Linux'), 'session'),
    });
    expect(ended.status).toBe(303);
    expect(await silent(desktop)).toBe('login_required');
    expect(await refresh(onDesktop.refresh_token!)).toBeUndefined();
    expect(await silent(laptop)).toBe('signed in');
    expect(await silent(phone)).toBe('signed in');
    const phoneToken = await refresh(onPhone.refresh_token!);
    expect(phoneToken).toBeTruthy();
    const afterOne = await page(laptop, '/account/sessions');
    expect(afterOne.match(/<li class="session/g)).toHaveLength(2);
    expect(afterOne).not.toContain('Firefox on Linux');
    const audited = await server
      .db('audit_events')
      .where({ type: 'session_ended', subject: userId });
    expect(audited).toHaveLength(1);
    expect(JSON.parse(JSON.stringify(audited[0].detail))).toMatchObject({
      device: 'Firefox on Linux',
    });

    const others = await laptop.post(`${server.url}/account/sessions/end-others`, {
      csrf: hiddenInput(afterOne, 'csrf'),
    });
    expect(others.status).toBe(303);
    expect(await silent(phone)).toBe('login_required');
    expect(await refresh(phoneToken!)).toBeUndefined();
    expect(await silent(laptop)).toBe('signed in');
    expect(await refresh(onLaptop.refresh_token!)).toBeTruthy();
    const onlyThis = await page(laptop, '/account/sessions');
    expect(onlyThis.match(/<li class="session/g)).toHaveLength(1);
    expect(onlyThis).toContain('This device');
    expect(
      await server.db('audit_events').where({ type: 'other_sessions_ended', subject: userId }),
    ).toHaveLength(1);
  });

  it('refuses a handle that is not one of the account’s sessions, and a form without its token', async () => {
    const browser = new Browser({ userAgent: AGENTS.laptop });
    await signIn(rp, browser, server.url, USER);
    const html = await page(browser, '/account/sessions');
    const unknown = await browser.post(`${server.url}/account/sessions/end`, {
      csrf: hiddenInput(html, 'csrf'),
      session: 'not-a-session-of-yours',
    });
    expect(unknown.status).toBe(404);
    expect(await unknown.text()).toContain('already ended');
    const forged = await browser.post(`${server.url}/account/sessions/end-others`, {});
    expect(forged.status).toBe(403);
  });

  it('shows the name, the address and whether it is verified, with links to each section', async () => {
    const browser = new Browser();
    await signIn(rp, browser, server.url, USER);
    const html = await page(browser, '/account');
    expect(html).toContain('Tri Browser');
    expect(html).toContain(USER.email);
    expect(html).toContain('Verified');
    for (const link of [
      '/account/password',
      '/account/email',
      '/account/mfa',
      '/account/sessions',
      '/account/apps',
      '/account/activity',
      '/account/export',
      '/account/delete',
    ])
      expect(html).toContain(`href="${link}"`);
  });
});
