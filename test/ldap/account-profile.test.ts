import type * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, formAction, hiddenInput } from '../support/browser.ts';
import { signIn } from '../support/relying-party.ts';
import type { TestServer } from '../support/server.ts';
import { startSlapdServer } from '../support/slapd-server.ts';
import { SEEDED, type Slapd } from '../support/slapd.ts';

const { alice } = SEEDED;
const LOCAL = { email: 'local.lou@example.test', password: 'lou is a local account' };
const DIRECTORY_WORDS = 'come from your organisation’s directory';

describe("a directory user's profile (real slapd)", () => {
  let slapd: Slapd;
  let server: TestServer;
  let rp: oidc.Configuration;
  let browser: Browser;
  let userId: string;

  beforeAll(async () => {
    ({ slapd, server, rp } = await startSlapdServer('embedded', LOCAL));
    browser = new Browser();
    const tokens = await signIn(rp, browser, server.url, {
      email: alice.uid,
      password: alice.password,
      scope: 'openid email profile',
    });
    userId = tokens.claims()!.sub;
  });
  afterAll(async () => {
    await server?.cleanup();
    await slapd?.cleanup();
  });

  const profileEvents = () =>
    server.db('audit_events').where({ subject: userId, type: 'profile_updated' });

  it('shows the names and email the directory supplies, read-only, saying where they come from', async () => {
    const res = await browser.get(`${server.url}/account/profile`);
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain(DIRECTORY_WORDS);
    expect(html).toContain(alice.givenName);
    expect(html).toContain(alice.sn);
    expect(html).toContain(alice.cn);
    expect(html).toContain(alice.email);
    expect(html).not.toContain('<form');
    expect(html).not.toContain('href="/account/email"');
    const home = await (await browser.get(`${server.url}/account`)).text();
    expect(home).toContain('href="/account/profile"');
    expect(home).toContain('Your address comes from your organisation’s directory.');
  });

  it('refuses a post that would change the names, and says why', async () => {
    const before = (await server.users.findById(userId))!;
    const res = await browser.post(`${server.url}/account/profile`, {
      given_name: 'Mallory',
      family_name: alice.sn,
      name: 'Mallory Liddell',
    });
    expect(res.status).toBe(403);
    expect(await res.text()).toContain(DIRECTORY_WORDS);
    const after = (await server.users.findById(userId))!;
    expect(after).toMatchObject({ given_name: alice.givenName, name: alice.cn });
    expect(after.updated_at).toEqual(before.updated_at);
    expect(await profileEvents()).toHaveLength(0);
  });

  it('refuses an email change: the page, its form and a link issued before', async () => {
    const page = await browser.get(`${server.url}/account/email`);
    const html = await page.text();
    expect(html).toContain(DIRECTORY_WORDS);
    expect(html).not.toContain('name="current"');
    const post = await browser.post(`${server.url}/account/email`, {
      email: 'alice.elsewhere@example.test',
      current: alice.password,
    });
    expect(post.status).toBe(403);
    expect(await post.text()).toContain(DIRECTORY_WORDS);

    const token = await server.tokens.issue(userId, 'change_email', 3600, {
      email: 'alice.elsewhere@example.test',
    });
    const link = `${server.url}/account/email/confirm?token=${token}`;
    const confirm = await (await new Browser().get(link)).text();
    const redeemed = await new Browser().post(
      new URL(formAction(confirm, '/account/email/confirm'), server.url),
      { csrf: hiddenInput(confirm, 'csrf'), token },
    );
    expect(redeemed.status).toBe(403);
    expect(await redeemed.text()).toContain(DIRECTORY_WORDS);
    expect((await server.users.findById(userId))!.email).toBe(alice.email);
  });
});
