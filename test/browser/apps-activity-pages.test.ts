import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser as HttpBrowser } from '../support/browser.ts';
import { launchChromium, screenshots } from '../support/chromium.ts';
import { REDIRECT_URI, relyingParty, signIn } from '../support/relying-party.ts';
import { startTestServer, storageEnv, type TestServer } from '../support/server.ts';

const USER = { email: 'ines@example.test', password: 'ines keeps a long passphrase' };

describe('the connected apps and security activity pages in Chromium, JavaScript turned off', () => {
  let server: TestServer;
  let chromium: Browser;
  let page: Page;

  beforeAll(async () => {
    server = await startTestServer(await storageEnv('embedded'));
    await server.users.create({ ...USER, emailVerified: true, name: 'Ines' });
    for (const name of ['Harbour Notes', 'Calendar of the Seven Seas and Other Long Names']) {
      const client = await server.clients.create({ name, redirectUris: [REDIRECT_URI] });
      const rp = await relyingParty(server.url, client.clientId, client.clientSecret);
      const scope = name === 'Harbour Notes' ? undefined : 'openid email';
      await signIn(
        rp,
        new HttpBrowser({ userAgent: 'Firefox/128.0 (Windows NT 10.0)' }),
        server.url,
        {
          ...USER,
          ...(scope && { scope }),
        },
      );
    }
    chromium = await launchChromium();
    page = await (await chromium.newContext({ javaScriptEnabled: false })).newPage();
  });
  afterAll(async () => {
    await chromium?.close();
    await server?.cleanup();
  });

  it('signs in from the apps page, lists the apps and removes one', async () => {
    await page.goto(`${server.url}/account/apps`);
    await page.getByLabel('Email').fill(USER.email);
    await page.getByLabel('Password').fill(USER.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page.getByRole('heading', { name: 'Connected apps' }).isVisible()).resolves.toBe(
      true,
    );
    await expect(page.getByRole('heading', { name: 'Harbour Notes' }).isVisible()).resolves.toBe(
      true,
    );
    await screenshots(page, 'account-apps');

    await page.getByRole('button', { name: 'Remove access of Harbour Notes' }).click();
    await expect(page.getByRole('status').textContent()).resolves.toContain(
      'Harbour Notes can no longer use your account',
    );
    await expect(page.getByRole('heading', { name: 'Harbour Notes' }).count()).resolves.toBe(0);
    await screenshots(page, 'account-apps-removed');
  });

  it('shows the security activity, newest first', async () => {
    await page.getByRole('link', { name: 'Security activity' }).click();
    await expect(
      page.getByRole('heading', { name: 'Security activity' }).isVisible(),
    ).resolves.toBe(true);
    const first = page.getByRole('listitem').first();
    await expect(first.textContent()).resolves.toContain('Removed the access of Harbour Notes');
    await expect(
      page.getByText('Signed in with the password to your account page').count(),
    ).resolves.toBe(1);
    await screenshots(page, 'account-activity');
  });
});
