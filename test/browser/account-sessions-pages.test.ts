import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser as HttpBrowser } from '../support/browser.ts';
import { launchChromium, screenshots } from '../support/chromium.ts';
import { REDIRECT_URI, relyingParty, signIn } from '../support/relying-party.ts';
import { startTestServer, storageEnv, type TestServer } from '../support/server.ts';

const USER = { email: 'ines@example.test', password: 'ines keeps a long passphrase' };

describe('the account home and sessions pages in Chromium, JavaScript turned off', () => {
  let server: TestServer;
  let chromium: Browser;
  let page: Page;

  beforeAll(async () => {
    server = await startTestServer(await storageEnv('embedded'));
    await server.users.create({ ...USER, name: 'Inès Marchetti', emailVerified: true });
    const client = await server.clients.create({
      name: 'Harbour Notes',
      redirectUris: [REDIRECT_URI],
    });
    const rp = await relyingParty(server.url, client.clientId, client.clientSecret);
    for (const userAgent of [
      'Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0',
      'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1',
    ])
      await signIn(rp, new HttpBrowser({ userAgent }), server.url, USER);
    chromium = await launchChromium();
    page = await (await chromium.newContext({ javaScriptEnabled: false })).newPage();
  });
  afterAll(async () => {
    await chromium?.close();
    await server?.cleanup();
  });

  it('signs in from a fresh browser without any app and shows the home', async () => {
    await page.goto(`${server.url}/account`);
    await page.getByLabel('Email').fill(USER.email);
    await page.getByLabel('Password').fill(USER.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    expect(new URL(page.url()).pathname).toBe('/account');
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Your account');
    expect(await page.getByText('Verified', { exact: true }).isVisible()).toBe(true);
    expect(await page.getByText('Signed in on 3 browsers.', { exact: false }).isVisible()).toBe(
      true,
    );
    await screenshots(page, 'account-home');
  });

  it('lists the three sessions, this one marked, and ends one with its button', async () => {
    await page.getByRole('link', { name: 'Where you are signed in' }).click();
    const sessions = page.getByRole('list', { name: 'Signed-in browsers' }).getByRole('listitem');
    expect(await sessions.count()).toBe(3);
    expect(await sessions.first().textContent()).toContain('This device');
    await screenshots(page, 'account-sessions');

    await page.getByRole('button', { name: /End the session of Firefox on Linux/ }).click();
    expect(await page.getByRole('status').textContent()).toContain('that browser is signed out');
    expect(await sessions.count()).toBe(2);
    await screenshots(page, 'account-sessions-ended');

    await page.getByRole('button', { name: 'End all other sessions' }).click();
    expect(await sessions.count()).toBe(1);
    expect(await page.getByRole('button', { name: 'End all other sessions' }).count()).toBe(0);
  });
});
