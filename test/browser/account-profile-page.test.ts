import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NAME_MAX } from '../../server/http/form.ts';
import { launchChromium, screenshots } from '../support/chromium.ts';
import type { TestServer } from '../support/server.ts';
import { startSlapdServer } from '../support/slapd-server.ts';
import { SEEDED, type Slapd } from '../support/slapd.ts';

const LOCAL = {
  email: 'noor@example.test',
  password: 'noor picks long passphrases',
  givenName: 'Noor',
  familyName: 'Haddad',
};
const { alice } = SEEDED;

describe('the profile page in Chromium, JavaScript turned off', () => {
  let slapd: Slapd;
  let server: TestServer;
  let chromium: Browser;

  beforeAll(async () => {
    ({ slapd, server } = await startSlapdServer('embedded', LOCAL));
    chromium = await launchChromium();
  });
  afterAll(async () => {
    await chromium?.close();
    await server?.cleanup();
    await slapd?.cleanup();
  });

  async function signedInAt(path: string, login: string, password: string): Promise<Page> {
    const page = await (await chromium.newContext({ javaScriptEnabled: false })).newPage();
    await page.goto(`${server.url}${path}`);
    await page.getByLabel('Email').fill(login);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    expect(new URL(page.url()).pathname).toBe(path);
    return page;
  }

  it('edits the names, shows a problem with the input kept, then saves', async () => {
    const page = await signedInAt('/account/profile', LOCAL.email, LOCAL.password);
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Your profile');
    expect(await page.getByLabel('Given name').inputValue()).toBe('Noor');
    expect(await page.getByRole('link', { name: 'Change your email address' }).count()).toBe(1);
    await screenshots(page, 'account-profile');

    await page.getByLabel('Given name').fill('N'.repeat(NAME_MAX + 1));
    await page.getByLabel('Family name').fill('Haddad-Karimi');
    await page.getByRole('button', { name: 'Save' }).click();
    expect(await page.getByRole('alert').textContent()).toContain(`at most ${NAME_MAX}`);
    expect(await page.getByLabel('Family name').inputValue()).toBe('Haddad-Karimi');
    await screenshots(page, 'account-profile-problem');

    await page.getByLabel('Given name').fill('Noor');
    await page.getByLabel('Display name').fill('Noor H.');
    await page.getByRole('button', { name: 'Save' }).click();
    expect(await page.getByRole('status').textContent()).toContain('Your profile was saved.');
    expect(await page.getByLabel('Display name').inputValue()).toBe('Noor H.');
    await screenshots(page, 'account-profile-saved');

    await page.getByRole('link', { name: 'Your account' }).click();
    expect(await page.getByText('Noor H.', { exact: true }).isVisible()).toBe(true);
    expect(await page.getByRole('link', { name: 'Profile' }).isVisible()).toBe(true);
  });

  it("shows a directory user's names read-only, saying they come from the directory", async () => {
    const page = await signedInAt('/account/profile', alice.uid, alice.password);
    expect(await page.getByText('come from your organisation’s directory').isVisible()).toBe(true);
    expect(await page.getByText(alice.cn, { exact: true }).isVisible()).toBe(true);
    expect(await page.getByRole('textbox').count()).toBe(0);
    expect(await page.getByRole('button', { name: 'Save' }).count()).toBe(0);
    await screenshots(page, 'account-profile-directory');
  });
});
