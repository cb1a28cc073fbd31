import { rmSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser as HttpBrowser } from '../support/browser.ts';
import { launchChromium, screenshots } from '../support/chromium.ts';
import { cityRecord, writeMmdb } from '../support/mmdb-writer.ts';
import { REDIRECT_URI, relyingParty, signIn } from '../support/relying-party.ts';
import { startTestServer, storageEnv, type TestServer } from '../support/server.ts';

const USER = { email: 'marta@example.test', password: 'marta travels with a passphrase' };
const ANDROID =
  'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36';

describe('the sessions page with approximate locations in Chromium, JavaScript turned off', () => {
  let server: TestServer;
  let chromium: Browser;
  let page: Page;
  let db: string;

  beforeAll(async () => {
    db = writeMmdb([{ network: '203.0.113.0/24', record: cityRecord('Lisbon', 'Portugal', 'PT') }]);
    server = await startTestServer({
      ...(await storageEnv('embedded')),
      TRUST_PROXY: 'loopback',
      GEOIP_DB: db,
    });
    await server.users.create({ ...USER, name: 'Marta Sousa', emailVerified: true });
    const client = await server.clients.create({
      name: 'Tram Times',
      redirectUris: [REDIRECT_URI],
    });
    const rp = await relyingParty(server.url, client.clientId, client.clientSecret);
    // A phone that signed in from Lisbon, through the trusted proxy.
    const phone = new HttpBrowser({
      userAgent: ANDROID,
      transport: (url, init) =>
        fetch(url, {
          ...init,
          headers: { ...(init?.headers as object), 'x-forwarded-for': '203.0.113.7' },
        }),
    });
    await signIn(rp, phone, server.url, USER);
    chromium = await launchChromium();
    page = await (await chromium.newContext({ javaScriptEnabled: false })).newPage();
  });
  afterAll(async () => {
    await chromium?.close();
    await server?.cleanup();
    rmSync(dirname(db), { recursive: true, force: true });
  });

  it('shows the city and country beside the IP of the session from Lisbon', async () => {
    await page.goto(`${server.url}/account/sessions`);
    await page.getByLabel('Email').fill(USER.email);
    await page.getByLabel('Password').fill(USER.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    expect(new URL(page.url()).pathname).toBe('/account/sessions');
    const sessions = page.getByRole('list', { name: 'Signed-in browsers' }).getByRole('listitem');
    expect(await sessions.count()).toBe(2);
    const abroad = sessions.filter({ hasText: '203.0.113.7' });
    expect(await abroad.getByText('Location', { exact: true }).isVisible()).toBe(true);
    expect(await abroad.getByText('Lisbon, Portugal (approximate)').isVisible()).toBe(true);
    expect(await sessions.first().getByText('Location', { exact: true }).count()).toBe(0);
    await screenshots(page, 'account-sessions-location');
  });
});
