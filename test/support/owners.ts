import { expect } from 'vitest';
import { Browser, formAction, hiddenInput } from './browser.ts';
import type { MailApp } from './mail-app.ts';
import { silentAuthorizationUrl } from './relying-party.ts';

export const SECURE_LINK = /https?:\/\/\S+\/secure-account\?token=[\w-]+/;
export const NEW_PASSWORD = 'copper kettle 19 horizon velvet';
export const FIREFOX =
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0';
export const SAFARI =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1';

/**
 * What the "this wasn't me" tests do over and over, on the mail app `app()` returns (it is
 * started in a beforeAll): make an owner, look at their row, press an emailed link's button,
 * and choose a new password from the page that follows.
 */
export function ownerSteps(app: () => MailApp) {
  let n = 0;
  return {
    async newUser() {
      const user = { email: `owner${++n}@example.test`, password: `the owner's passphrase ${n}` };
      const { id } = await app().server.users.create({ ...user, emailVerified: true });
      return { ...user, id };
    },

    row: (id: string) => app().server.db('users').where({ id }).first(),

    /** Whether the browser still has a session: a prompt=none request gets a code. */
    async hasSession(browser: Browser) {
      const { server, rp } = app();
      const res = await browser.get(await silentAuthorizationUrl(rp));
      return (await browser.follow(res, server.url)).url.searchParams.has('code');
    },

    /** Opens the emailed link (the confirm page) and presses its button. */
    async secure(link: string, browser = new Browser()) {
      const page = await browser.get(link);
      expect(page.status).toBe(200);
      const html = await page.text();
      const res = await browser.post(
        new URL(formAction(html, '/secure-account'), app().server.url),
        { csrf: hiddenInput(html, 'csrf'), token: hiddenInput(html, 'token') },
      );
      return { status: res.status, html: await res.text() };
    },

    /** Follows the "choose a new password" button of the page `secure` answered with. */
    async resetFrom(securedHtml: string, password = NEW_PASSWORD) {
      const href = /href="([^"]*\/reset\?token=[^"]+)"/.exec(securedHtml)![1]!;
      const browser = new Browser();
      const html = await (await browser.get(href.replace(/&amp;/g, '&'))).text();
      const res = await browser.post(new URL(formAction(html, '/reset'), app().server.url), {
        csrf: hiddenInput(html, 'csrf'),
        token: hiddenInput(html, 'token'),
        password,
        confirm: password,
      });
      return res.text();
    },
  };
}
