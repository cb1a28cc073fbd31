import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, screenshots } from '../support/chromium.ts';
import { REDIRECT_URI, authorizationRequest, relyingParty } from '../support/relying-party.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { startPostgres, startRedis, type RestartableService } from '../support/services.ts';

const USER = { email: 'ines@example.test', password: 'ines keeps a long passphrase' };

describe('the outage page in Chromium, JavaScript turned off', () => {
  let postgres: RestartableService;
  let redis: RestartableService;
  let server: TestServer;
  let chromium: Browser;
  let page: Page;

  beforeAll(async () => {
    [postgres, redis] = await Promise.all([startPostgres(), startRedis({ appendonly: true })]);
    server = await startTestServer({
      DATA_DIR: mkdtempSync(join(tmpdir(), 'latchkey-data-')),
      DATABASE_URL: postgres.url,
      REDIS_URL: redis.url,
      DEPENDENCY_TIMEOUT_MS: '1000',
    });
    await server.users.create({ ...USER, emailVerified: true });
    chromium = await launchChromium();
    page = await (await chromium.newContext({ javaScriptEnabled: false })).newPage();
  });
  afterAll(async () => {
    await chromium?.close();
    await server?.cleanup();
    await Promise.all([postgres?.stop(), redis?.stop()]);
  });

  it('says to try again, and takes the user back to the form with the address still filled in', async () => {
    const client = await server.clients.create({ name: 'Atlas', redirectUris: [REDIRECT_URI] });
    const rp = await relyingParty(server.url, client.clientId, client.clientSecret);
    await page.goto((await authorizationRequest(rp)).url.href);
    await page.getByLabel('Email').fill(USER.email);
    await page.getByLabel('Password').fill(USER.password);

    await redis.down();
    try {
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('heading', { name: 'Try again in a moment' }).waitFor();
      expect(await page.getByRole('alert').textContent()).toMatch(/try again in a few seconds/i);
      expect(await page.content()).not.toContain(USER.password);
      await screenshots(page, 'outage');
    } finally {
      await redis.up();
    }
    await expect
      .poll(async () => (await fetch(`${server.url}/readyz`)).status, { timeout: 5000 })
      .toBe(200);

    await page.getByRole('button', { name: 'Back to the form' }).click();
    expect(await page.getByLabel('Email').inputValue()).toBe(USER.email);
    expect(await page.getByLabel('Password').inputValue()).toBe('');
    expect(await page.getByRole('alert').textContent()).toMatch(/nothing was changed/i);
    await screenshots(page, 'outage-back-to-the-form');

    await page.getByLabel('Password').fill(USER.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: 'Allow' }).waitFor();
  });
});
