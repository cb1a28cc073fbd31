import type * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeDevice } from '../../server/users/devices.ts';
import { Browser } from '../support/browser.ts';
import { recipients } from '../support/mailbox.ts';
import { signIn } from '../support/relying-party.ts';
import type { TestServer } from '../support/server.ts';
import { startMailApp, type MailApp } from '../support/mail-app.ts';
import type { TestSmtpServer } from '../support/smtp.ts';

const USER = { email: 'traveller@example.test', password: 'a passphrase for the road' };
const FIREFOX_WINDOWS =
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0';
const SAFARI_IPHONE =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1';

describe('new-device sign-in notice', () => {
  let app: MailApp;
  let server: TestServer;
  let smtp: TestSmtpServer;
  let rp: oidc.Configuration;
  beforeAll(async () => {
    app = await startMailApp({ storage: 'embedded', clientName: 'Travel app', user: USER });
    ({ server, smtp, rp } = app);
  });

  afterAll(async () => {
    await app?.stop();
  });

  const notices = () =>
    smtp.messages.filter(
      (m) => recipients(m).includes(USER.email) && /new sign-in/i.test(m.subject ?? ''),
    );

  it('stays quiet for the first device and for a known one, and writes when a new one signs in', async () => {
    await signIn(rp, new Browser({ userAgent: FIREFOX_WINDOWS }), server.url, USER);
    await signIn(rp, new Browser({ userAgent: FIREFOX_WINDOWS }), server.url, USER);
    await new Promise((r) => setTimeout(r, 500));
    expect(notices()).toHaveLength(0);

    await signIn(rp, new Browser({ userAgent: SAFARI_IPHONE }), server.url, USER);
    const mail = await smtp.waitForMessage((m) => notices().includes(m), 5000);
    expect(mail.text).toContain('Mobile Safari on iOS');
    expect(mail.text).toContain('127.0.0.1');
    expect(notices()).toHaveLength(1);
  });

  it('describes devices the way people name them', () => {
    expect(describeDevice(FIREFOX_WINDOWS, '10.0.0.1').description).toBe('Firefox on Windows');
    expect(describeDevice('', '10.0.0.1').description).toBe('Unknown browser');
    expect(describeDevice(FIREFOX_WINDOWS, '10.0.0.1').fingerprint).not.toBe(
      describeDevice(FIREFOX_WINDOWS, '10.0.0.2').fingerprint,
    );
  });
});
