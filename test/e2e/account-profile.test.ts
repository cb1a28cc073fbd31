import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NAME_MAX } from '../../server/http/form.ts';
import { withAuditRefused } from '../support/audit-fault.ts';
import { Browser, hiddenInput } from '../support/browser.ts';
import { startMailApp, type MailApp } from '../support/mail-app.ts';
import { recipients } from '../support/mailbox.ts';
import { signIn } from '../support/relying-party.ts';
import { STORAGES } from '../support/server.ts';

const USER = {
  email: 'Petra.Profile@example.test',
  password: 'petra keeps her names tidy',
  name: 'Petra P.',
  givenName: 'Petra',
  familyName: 'Profile',
};
const SCOPE = 'openid email profile';

describe.each(STORAGES)('the profile page on %s storage', (storage) => {
  let app: MailApp;
  let userId: string;
  beforeAll(async () => {
    app = await startMailApp({ storage, clientName: 'Name Tag', user: USER });
    userId = (await app.server.users.findByEmail(USER.email))!.id;
  });
  afterAll(() => app?.stop());

  const url = () => `${app.server.url}/account/profile`;
  const signedIn = async () => {
    const browser = new Browser();
    const tokens = await signIn(app.rp, browser, app.server.url, { ...USER, scope: SCOPE });
    return { browser, tokens };
  };
  const formOf = async (browser: Browser) => {
    const res = await browser.get(url());
    expect(res.status).toBe(200);
    return res.text();
  };
  const profileEvents = () =>
    app.server.db('audit_events').where({ subject: userId, type: 'profile_updated' });

  it('sends a browser that is not signed in to sign in first', async () => {
    const res = await new Browser().get(url());
    expect(res.status).toBe(303);
    expect(new URL(res.headers.get('location')!, app.server.url).pathname).toBe('/auth');
  });

  it('saves the names: apps see them in userinfo and the ID token, and one audit row names the fields changed', async () => {
    const { browser, tokens } = await signedIn();
    const html = await formOf(browser);
    expect(html).toContain('value="Petra"');
    expect(html).toContain('value="Petra P."');
    expect(html).toContain(USER.email);
    expect(html).toContain('href="/account/email"');
    const before = (await app.server.users.findById(userId))!;

    const saved = await browser.post(url(), {
      csrf: hiddenInput(html, 'csrf'),
      given_name: '  Petronella ',
      family_name: 'Profile',
      name: 'Petronella Profile',
    });
    expect(saved.status).toBe(303);
    const done = await (await browser.get(new URL(saved.headers.get('location')!, url()))).text();
    expect(done).toContain('Your profile was saved.');
    expect(done).toContain('value="Petronella"');

    const after = (await app.server.users.findById(userId))!;
    expect(after).toMatchObject({ given_name: 'Petronella', name: 'Petronella Profile' });
    expect(new Date(after.updated_at).getTime()).toBeGreaterThan(
      new Date(before.updated_at).getTime(),
    );
    const info = await oidc.fetchUserInfo(app.rp, tokens.access_token, tokens.claims()!.sub);
    expect(info).toMatchObject({ given_name: 'Petronella', name: 'Petronella Profile' });
    const again = await signIn(app.rp, new Browser(), app.server.url, { ...USER, scope: SCOPE });
    expect(again.claims()).toMatchObject({
      given_name: 'Petronella',
      family_name: 'Profile',
      name: 'Petronella Profile',
    });

    const events = await profileEvents();
    expect(events).toHaveLength(1);
    const detail = JSON.stringify(events[0].detail);
    expect(detail).toContain('given_name');
    expect(detail).toContain('"name"');
    expect(detail).not.toContain('family_name');
    expect(detail).not.toContain('Petronella');
    const activity = await (await browser.get(`${app.server.url}/account/activity`)).text();
    expect(activity).toContain('Changed the given name and display name');
  });

  it('without a display name, apps get the given and family names joined, as Keycloak gives them', async () => {
    const { browser, tokens } = await signedIn();
    const html = await formOf(browser);
    const saved = await browser.post(url(), {
      csrf: hiddenInput(html, 'csrf'),
      given_name: 'Petra',
      family_name: 'Profile',
      name: '',
    });
    expect(saved.status).toBe(303);
    expect((await app.server.users.findById(userId))!.name).toBeNull();
    const info = await oidc.fetchUserInfo(app.rp, tokens.access_token, tokens.claims()!.sub);
    expect(info.name).toBe('Petra Profile');
    const again = await signIn(app.rp, new Browser(), app.server.url, { ...USER, scope: SCOPE });
    expect(again.claims()!.name).toBe('Petra Profile');
    const home = await (await browser.get(`${app.server.url}/account`)).text();
    expect(home).toContain('Petra Profile');
    expect(home).toContain('href="/account/profile"');
  });

  it('refuses a name too long or with a line break, keeps what was typed, and changes nothing', async () => {
    const { browser } = await signedIn();
    const html = await formOf(browser);
    const before = (await app.server.users.findById(userId))!;
    const events = (await profileEvents()).length;
    const long = await browser.post(url(), {
      csrf: hiddenInput(html, 'csrf'),
      given_name: 'x'.repeat(NAME_MAX + 1),
      family_name: 'Kept Family',
      name: '',
    });
    expect(long.status).toBe(400);
    const longPage = await long.text();
    expect(longPage).toContain(`at most ${NAME_MAX} characters`);
    expect(longPage).toContain('value="Kept Family"');
    const broken = await browser.post(url(), {
      csrf: hiddenInput(html, 'csrf'),
      given_name: 'Petra',
      family_name: 'Profile',
      name: 'Petra\r\nBcc: everyone@example.test',
    });
    expect(broken.status).toBe(400);
    expect(await broken.text()).toContain('line breaks');
    // A right-to-left override would make the name read as another ("Trojan Source").
    const spoofed = await browser.post(url(), {
      csrf: hiddenInput(html, 'csrf'),
      given_name: 'Petra',
      family_name: 'Profile',
      name: 'Admin\u202Enimda',
    });
    expect(spoofed.status).toBe(400);
    expect(await spoofed.text()).toContain('text-direction overrides');
    const after = (await app.server.users.findById(userId))!;
    expect(after).toMatchObject({ given_name: before.given_name, name: before.name });
    expect(after.updated_at).toEqual(before.updated_at);
    expect(await profileEvents()).toHaveLength(events);
  });

  it('refuses a post without the form token, and records nothing when nothing changed', async () => {
    const { browser } = await signedIn();
    const forged = await browser.post(url(), { given_name: 'Mallory', family_name: '', name: '' });
    expect(forged.status).toBe(403);
    expect((await app.server.users.findById(userId))!.given_name).toBe('Petra');

    const before = (await app.server.users.findById(userId))!;
    const events = (await profileEvents()).length;
    const html = await formOf(browser);
    const same = await browser.post(url(), {
      csrf: hiddenInput(html, 'csrf'),
      given_name: before.given_name ?? '',
      family_name: before.family_name ?? '',
      name: before.name ?? '',
    });
    expect(same.status).toBe(303);
    expect(await profileEvents()).toHaveLength(events);
    expect((await app.server.users.findById(userId))!.updated_at).toEqual(before.updated_at);
  });

  it('a change whose audit row cannot be written does not happen: 503, and sent again it goes through', async () => {
    const { browser } = await signedIn();
    const html = await formOf(browser);
    const before = (await app.server.users.findById(userId))!;
    const form = {
      csrf: hiddenInput(html, 'csrf'),
      given_name: 'Unrecorded',
      family_name: before.family_name ?? '',
      name: before.name ?? '',
    };
    const refused = await withAuditRefused(app.server.db, ['profile_updated'], () =>
      browser.post(url(), form),
    );
    expect(refused.status).toBe(503);
    const after = (await app.server.users.findById(userId))!;
    expect(after.given_name).toBe(before.given_name);
    expect(after.updated_at).toEqual(before.updated_at);

    expect((await browser.post(url(), form)).status).toBe(303);
    expect((await app.server.users.findById(userId))!.given_name).toBe('Unrecorded');
  });

  it('never calls the own address, in any letter case, taken by another account', async () => {
    const { browser } = await signedIn();
    const form = await (await browser.get(`${app.server.url}/account/email`)).text();
    const mailsBefore = app.smtp.messages.length;
    for (const email of [USER.email, USER.email.toLowerCase(), USER.email.toUpperCase()]) {
      const res = await browser.post(`${app.server.url}/account/email`, {
        csrf: hiddenInput(form, 'csrf'),
        email,
        current: USER.password,
      });
      const page = await res.text();
      expect(page).toContain('That is already your address.');
      expect(page).not.toContain('Another account');
    }
    // No "someone tried to move an account to your address" notice to the owner themself.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const mails = app.smtp.messages.slice(mailsBefore);
    const toOwner = mails.filter((m) =>
      recipients(m).toLowerCase().includes(USER.email.toLowerCase()),
    );
    expect(toOwner.filter((m) => /tried to move/.test(m.subject ?? ''))).toHaveLength(0);
  });
});
