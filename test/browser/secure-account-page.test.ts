import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser as HttpBrowser } from '../support/browser.ts';
import { launchChromium, screenshots } from '../support/chromium.ts';
import { startMailApp, type MailApp } from '../support/mail-app.ts';
import { linkFromMail } from '../support/mailbox.ts';
import { signIn } from '../support/relying-party.ts';

const USER = { email: 'nora@example.test', password: 'nora keeps a long passphrase' };

describe('the "this wasn\'t me" pages in Chromium, JavaScript turned off', () => {
  let app: MailApp;
  let chromium: Browser;
  let page: Page;

  beforeAll(async () => {
    app = await startMailApp({ clientName: 'Harbour Notes', user: { ...USER, name: 'Nora' } });
    chromium = await launchChromium();
    page = await (await chromium.newContext({ javaScriptEnabled: false })).newPage();
  });
  afterAll(async () => {
    await chromium?.close();
    await app?.stop();
  });

  it('confirms with a button, then says the account is locked and offers a new password', async () => {
    const { rp, server, smtp } = app;
    await signIn(
      rp,
      new HttpBrowser({ userAgent: 'Firefox/128.0 (Windows NT 10.0)' }),
      server.url,
      USER,
    );
    const mailsBefore = smtp.messages.length;
    await signIn(rp, new HttpBrowser({ userAgent: 'curl/8.0' }), server.url, USER);
    const { link } = await linkFromMail(
      smtp,
      USER.email,
      mailsBefore,
      /https?:\/\/\S+\/secure-account\?token=[\w-]+/,
    );

    await page.goto(link);
    await expect(
      page.getByRole('heading', { name: 'Secure your account' }).isVisible(),
    ).resolves.toBe(true);
    await screenshots(page, 'secure-account');
    await page.getByRole('button', { name: 'Lock my account and sign out everywhere' }).click();
    await expect(
      page.getByRole('heading', { name: 'Your account is locked' }).isVisible(),
    ).resolves.toBe(true);
    await screenshots(page, 'secure-account-done');

    await page.getByRole('link', { name: 'Choose a new password' }).click();
    await expect(
      page.getByRole('heading', { name: 'Choose a new password' }).isVisible(),
    ).resolves.toBe(true);
  });
});
