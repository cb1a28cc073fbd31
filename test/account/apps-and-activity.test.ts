import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { userEvent } from '../../server/audit/audit.ts';
import { ACTIVITY_PAGE_SIZE } from '../../server/account-pages/security-activity.ts';
import { Browser, hiddenInput } from '../support/browser.ts';
import { REDIRECT_URI, relyingParty, signIn } from '../support/relying-party.ts';
import { STORAGES, startTestServer, storageEnv, type TestServer } from '../support/server.ts';

const USER = { email: 'owner@example.test', password: 'an owner of several apps' };
const OTHER = { email: 'neighbour@example.test', password: 'a neighbour with secrets' };
const PHONE =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Version/17.4 Mobile Safari/604.1';

describe.each(STORAGES)('connected apps and security activity on %s storage', (storage) => {
  let server: TestServer;
  let rp: oidc.Configuration;
  let clientId: string;
  let userId: string;
  let otherId: string;
  beforeAll(async () => {
    server = await startTestServer(await storageEnv(storage));
    userId = (await server.users.create({ ...USER, emailVerified: true })).id;
    otherId = (await server.users.create({ ...OTHER, emailVerified: true })).id;
    const client = await server.clients.create({
      name: 'Photo Album',
      redirectUris: [REDIRECT_URI],
    });
    clientId = client.clientId;
    rp = await relyingParty(server.url, client.clientId, client.clientSecret);
  });
  afterAll(() => server?.cleanup());

  const appsPage = async (browser: Browser) => {
    const res = await browser.get(`${server.url}/account/apps`);
    expect(res.status).toBe(200);
    return res.text();
  };

  it('lists an allowed app and removes its access: its refresh tokens fail everywhere and it asks again', async () => {
    const laptop = new Browser();
    const phone = new Browser({ userAgent: PHONE });
    const onLaptop = await signIn(rp, laptop, server.url, USER);
    const onPhone = await signIn(rp, phone, server.url, USER);
    // Signed in and allowed: the app gets its tokens without asking (the grant is read again).
    const allowed: string[] = [];
    await signIn(rp, laptop, server.url, { ...USER, params: { prompt: '' }, shown: allowed });
    expect(allowed).toEqual([]);
    const html = await appsPage(laptop);
    expect(html).toContain('Photo Album');
    expect(html).toContain('See your name');
    expect(html).toContain('offline access');
    expect(html).toMatch(/Last used \d/);

    // No token, no removal.
    const forged = await laptop.post(`${server.url}/account/apps/remove`, { client: clientId });
    expect(forged.status).toBe(403);
    expect((await oidc.refreshTokenGrant(rp, onPhone.refresh_token!)).access_token).toBeTruthy();

    const removed = await laptop.post(`${server.url}/account/apps/remove`, {
      csrf: hiddenInput(html, 'csrf'),
      client: clientId,
    });
    expect(removed.status).toBe(200);
    const after = await removed.text();
    expect(after).toContain('Photo Album can no longer use your account');
    expect(after).toContain('No apps have access to your account.');
    for (const tokens of [onLaptop, onPhone])
      await expect(oidc.refreshTokenGrant(rp, tokens.refresh_token!)).rejects.toMatchObject({
        error: 'invalid_grant',
      });
    const rows = await server
      .db('audit_events')
      .where({ type: 'consent_withdrawn', subject: userId });
    expect(rows).toHaveLength(1);
    expect(await server.db('consents').where({ account_id: userId })).toHaveLength(0);

    // Removed again (from a page left open in another window): nothing to remove, and it says so.
    const again = await laptop.post(`${server.url}/account/apps/remove`, {
      csrf: hiddenInput(html, 'csrf'),
      client: clientId,
    });
    expect(again.status).toBe(200);
    expect(await again.text()).toContain('That app had no access to remove');

    // The browser is still signed in, but the app is asked about again.
    const shown: string[] = [];
    await signIn(rp, laptop, server.url, { ...USER, params: { prompt: '' }, shown });
    expect(shown).toEqual(['consent']);
  });

  it("shows the user's own events, newest first, with device and IP, and not another user's", async () => {
    await server.audit(userEvent('password_changed', otherId), { ip: '203.0.113.99' });
    const browser = new Browser({ userAgent: PHONE });
    await signIn(rp, browser, server.url, { ...USER, params: { prompt: '' } });
    const res = await browser.get(`${server.url}/account/activity`);
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain('Signed in with the password to Photo Album');
    expect(html).toContain('Removed the access of Photo Album');
    expect(html).toContain('Mobile Safari on iOS');
    expect(html).not.toContain('Changed the password');
    expect(html).not.toContain('203.0.113.99');
    // Newest first: this sign-in, the app allowed again, its access removed, first allowed.
    const at = [
      html.indexOf('Signed in with the password'),
      html.indexOf('Allowed Photo Album'),
      html.indexOf('Removed the access of'),
      html.lastIndexOf('Allowed Photo Album'),
    ];
    expect(at.every((i) => i >= 0)).toBe(true);
    expect([...at].sort((a, b) => a - b)).toEqual(at);
  });

  it('pages through every event of the user once, by cursor', async () => {
    for (let i = 0; i < ACTIVITY_PAGE_SIZE + 5; i++)
      await server.audit(userEvent('email_verified', userId, { n: i }), { ip: `198.51.100.${i}` });
    const expected = await server
      .db('audit_events')
      .where({ subject: userId })
      .whereNotIn('type', ['token_issued', 'token_refreshed'])
      .count({ n: '*' })
      .first();
    const browser = new Browser();
    await signIn(rp, browser, server.url, USER);
    let url: string | undefined = `${server.url}/account/activity`;
    const seen: string[] = [];
    let pages = 0;
    while (url) {
      const html: string = await (await browser.get(url)).text();
      const times = [...html.matchAll(/<li class="entry[^"]*">/g)];
      expect(times.length).toBeLessThanOrEqual(ACTIVITY_PAGE_SIZE);
      seen.push(...[...html.matchAll(/IP (198\.51\.100\.\d+)/g)].map((m) => m[1]!));
      const next: string | undefined = /href="(\/account\/activity\?before=[^"]+)"/.exec(html)?.[1];
      url = next && `${server.url}${next.replaceAll('&amp;', '&')}`;
      pages++;
    }
    expect(pages).toBeGreaterThanOrEqual(2);
    expect(new Set(seen).size).toBe(ACTIVITY_PAGE_SIZE + 5);
    expect(seen).toHaveLength(ACTIVITY_PAGE_SIZE + 5);
    // The newest first: the last one written comes first.
    expect(seen[0]).toBe(`198.51.100.${ACTIVITY_PAGE_SIZE + 4}`);
    expect(Number(expected?.n)).toBeGreaterThan(ACTIVITY_PAGE_SIZE + 5);
  });

  it('ignores a cursor that is not one, and shows a page of the user only', async () => {
    const browser = new Browser();
    await signIn(rp, browser, server.url, OTHER);
    const res = await browser.get(`${server.url}/account/activity?before=2020-01-01';drop`);
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain('Changed the password');
    expect(html).not.toContain('198.51.100.');
  });
});
