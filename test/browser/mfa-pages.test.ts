import { generate } from 'otplib';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, screenshots } from '../support/chromium.ts';
import { authorizationRequest, REDIRECT_URI, relyingParty } from '../support/relying-party.ts';
import { startTestServer, storageEnv, type TestServer } from '../support/server.ts';

const USER = { email: 'tara@example.test', password: 'tara keeps a long passphrase' };
const RP_ORIGIN = new URL(REDIRECT_URI).origin;

describe('two-step verification pages in Chromium, JavaScript turned off', () => {
  let server: TestServer;
  let chromium: Browser;
  let authorize: () => Promise<string>;
  let secret = '';

  beforeAll(async () => {
    server = await startTestServer({
      ...(await storageEnv('postgres+redis')),
      MFA_POLICY: 'optional',
      MFA_REQUIRED_ROLES: 'admin',
    });
    await server.users.create({ ...USER, roles: ['admin'], emailVerified: true });
    const client = await server.clients.create({
      name: 'Harbour Notes',
      redirectUris: [REDIRECT_URI],
    });
    const rp = await relyingParty(server.url, client.clientId, client.clientSecret);
    authorize = async () => (await authorizationRequest(rp)).url.href;
    chromium = await launchChromium();
  });
  afterAll(async () => {
    await chromium?.close();
    await server?.cleanup();
  });

  async function newPage(): Promise<{ context: BrowserContext; page: Page }> {
    const context = await chromium.newContext({ javaScriptEnabled: false });
    await context.route(`${RP_ORIGIN}/**`, (route) =>
      route.fulfill({ contentType: 'text/html', body: '<p>back at the app</p>' }),
    );
    return { context, page: await context.newPage() };
  }

  async function password(page: Page) {
    await page.goto(await authorize());
    await page.getByLabel('Email').fill(USER.email);
    await page.getByLabel('Password').fill(USER.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
  }

  it('makes an admin (MFA_REQUIRED_ROLES) set up the app at sign-in, then shows the recovery codes', async () => {
    const { context, page } = await newPage();
    await password(page);
    await expect(
      page.getByRole('heading', { name: 'Set up two-step verification' }).isVisible(),
    ).resolves.toBe(true);
    expect(await page.locator('figure.qr svg').isVisible()).toBe(true);
    secret = (await page.getByLabel('Setup key').textContent())!.replace(/\s/g, '');
    await screenshots(page, 'mfa-enrol');

    await page.getByLabel('Enter the 6-digit code the app shows').fill(await generate({ secret }));
    await page.getByRole('button', { name: 'Turn on two-step verification' }).click();
    const codes = page.getByRole('list', { name: 'Recovery codes' }).getByRole('listitem');
    expect(await codes.count()).toBe(10);
    await screenshots(page, 'mfa-recovery-codes');
    await page.getByRole('button', { name: 'I have saved them, continue' }).click();
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.waitForURL(`${RP_ORIGIN}/**`);

    await page.goto(`${server.url}/account/mfa`);
    expect(await page.getByText('On. Sign-ins ask for a code from your app.').isVisible()).toBe(
      true,
    );
    expect(await page.getByText('10 of 10 left.').isVisible()).toBe(true);
    await screenshots(page, 'account-mfa');
    await context.close();
  });

  it('asks for the code after the password, shows a wrong one on the page, and lets the right one in', async () => {
    const { context, page } = await newPage();
    await password(page);
    const code = page.getByLabel('Code', { exact: true });
    expect(await code.evaluate((el) => el === el.ownerDocument.activeElement)).toBe(true);
    await screenshots(page, 'mfa-code');
    await code.fill('000000');
    await page.getByRole('button', { name: 'Verify' }).click();
    expect(await page.getByRole('alert').textContent()).toContain('That code is not right');
    await screenshots(page, 'mfa-code-error');
    await page
      .getByLabel('Code', { exact: true })
      .fill(await generate({ secret, epoch: Math.floor(Date.now() / 1000) + 30 }));
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.waitForURL(`${RP_ORIGIN}/**`);
    await context.close();
  });
});
