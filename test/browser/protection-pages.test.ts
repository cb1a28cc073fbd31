import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, screenshots } from '../support/chromium.ts';
import { startMailApp, type MailApp } from '../support/mail-app.ts';
import { linkFromMail } from '../support/mailbox.ts';
import { authorizationRequest } from '../support/relying-party.ts';

const USER = { email: 'otto@example.test', password: 'otto has a long passphrase' };

describe('lockout and rate-limit pages in Chromium, JavaScript turned off', () => {
  let app: MailApp;
  let chromium: Browser;
  let page: Page;

  beforeAll(async () => {
    app = await startMailApp({
      clientName: 'Harbour Notes',
      user: { ...USER, name: 'Otto' },
      env: { LOCKOUT_THRESHOLD: '3', RATE_LIMIT_LOGIN_IP: '4/15m' },
    });
    chromium = await launchChromium();
    page = await (await chromium.newContext({ javaScriptEnabled: false })).newPage();
  });
  afterAll(async () => {
    await chromium?.close();
    await app?.stop();
  });

  async function signInWith(password: string) {
    await page.getByLabel('Email').fill(USER.email);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
  }

  it('locks the account, unlocks it from the email, and then slows the IP down', async () => {
    const mailsBefore = app.smtp.messages.length;
    await page.goto((await authorizationRequest(app.rp)).url.href);
    for (let i = 0; i < 3; i++) await signInWith('not the passphrase');
    expect(await page.getByRole('alert').textContent()).toContain(
      'The email or password is incorrect.',
    );

    const { link } = await linkFromMail(
      app.smtp,
      USER.email,
      mailsBefore,
      /https?:\/\/\S+\/unlock\?token=[\w-]+/,
    );
    await page.goto(link);
    await expect(
      page.getByRole('heading', { name: 'Unlock your account' }).isVisible(),
    ).resolves.toBe(true);
    await screenshots(page, 'unlock');
    await page.getByRole('button', { name: 'Unlock my account' }).click();
    await expect(
      page.getByRole('heading', { name: 'Your account is unlocked' }).isVisible(),
    ).resolves.toBe(true);
    await screenshots(page, 'unlock-done');

    // A fourth failure from this IP reaches RATE_LIMIT_LOGIN_IP: the next try waits.
    await page.goto((await authorizationRequest(app.rp)).url.href);
    await signInWith('still not it');
    await signInWith(USER.password);
    const alert = await page.getByRole('alert').textContent();
    expect(alert).toMatch(/Too many attempts\. Wait about 1[45] minutes, then try again\./);
    expect(await page.getByLabel('Email').inputValue()).toBe(USER.email);
    await screenshots(page, 'login-rate-limited');
  });
});
