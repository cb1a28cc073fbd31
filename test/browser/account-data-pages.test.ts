import { readFile } from 'node:fs/promises';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, screenshots } from '../support/chromium.ts';
import { startMailApp, type MailApp } from '../support/mail-app.ts';

const USER = { email: 'iris@example.test', password: 'iris writes long passphrases', name: 'Iris' };

describe('download my data and delete my account in Chromium, JavaScript turned off', () => {
  let app: MailApp;
  let chromium: Browser;
  let page: Page;

  beforeAll(async () => {
    app = await startMailApp({ clientName: 'Harbour Notes', user: USER });
    chromium = await launchChromium();
    const context = await chromium.newContext({ javaScriptEnabled: false, acceptDownloads: true });
    page = await context.newPage();
  });
  afterAll(async () => {
    await chromium?.close();
    await app?.stop();
  });

  it('signs in from the export page itself, downloads the file, then deletes the account', async () => {
    const { server } = app;
    await page.goto(`${server.url}/account/export`);
    await page.getByLabel('Email').fill(USER.email);
    await page.getByLabel('Password').fill(USER.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(
      page.getByRole('heading', { name: 'Download your data' }).isVisible(),
    ).resolves.toBe(true);
    await screenshots(page, 'account-export');

    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Download my data' }).click(),
    ]);
    expect(download.suggestedFilename()).toMatch(/^account-data-\d{4}-\d{2}-\d{2}\.json$/);
    const data = JSON.parse(await readFile((await download.path())!, 'utf8'));
    expect(data.profile.email).toBe(USER.email);

    await page.goto(`${server.url}/account/delete`);
    await expect(
      page.getByRole('heading', { name: 'Delete your account' }).isVisible(),
    ).resolves.toBe(true);
    await screenshots(page, 'account-delete');
    await page.getByLabel('Current password').fill(USER.password);
    await page.getByRole('button', { name: 'Delete my account' }).click();
    await expect(page.getByRole('alert').textContent()).resolves.toContain('Tick the box');
    await screenshots(page, 'account-delete-problem');

    await page.getByLabel('Current password').fill(USER.password);
    await page.getByLabel('I understand my account cannot be restored').check();
    await page.getByRole('button', { name: 'Delete my account' }).click();
    await expect(
      page.getByRole('heading', { name: 'Your account was deleted' }).isVisible(),
    ).resolves.toBe(true);
    await screenshots(page, 'account-deleted');
    expect(await server.users.findByEmail(USER.email)).toBeUndefined();
  });
});
