import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, formAction, hiddenInput } from '../support/browser.ts';
import { startMailApp, type MailApp } from '../support/mail-app.ts';
import { linkFromMail } from '../support/mailbox.ts';
import { signIn } from '../support/relying-party.ts';

// What a second attack review of the account center found (issue 14), each seen failing first.

const PASSWORD = 'a second review of the account center';

describe('account center under a second attack review', () => {
  let app: MailApp;

  beforeAll(async () => {
    // Embedded: every table the server keeps (sessions and interactions too) is in PostgreSQL.
    app = await startMailApp({
      storage: 'embedded',
      clientName: 'Review app',
      env: { MFA_POLICY: 'off' },
    });
  });
  afterAll(async () => {
    await app?.stop();
  });

  /** Every row of every table, as text, that holds `needle` (case-insensitive). */
  async function rowsHolding(needle: string): Promise<string[]> {
    const { db } = app.server;
    const tables: { table_name: string }[] = await db('information_schema.tables')
      .where({ table_schema: 'public', table_type: 'BASE TABLE' })
      .select('table_name');
    const found: string[] = [];
    for (const { table_name } of tables) {
      const rows: { row: string }[] = await db
        .from(db.raw('?? AS t', [table_name]))
        .select(db.raw('t::text AS row'));
      for (const { row } of rows)
        if (row.toLowerCase().includes(needle.toLowerCase())) found.push(`${table_name}: ${row}`);
    }
    return found;
  }

  it('answers a cursor of the year 0000 (a real-looking date PostgreSQL refuses) without a server error', async () => {
    const email = 'year.zero@example.test';
    await app.server.users.create({ email, password: PASSWORD, emailVerified: true });
    const browser = new Browser();
    await signIn(app.rp, browser, app.server.url, { email, password: PASSWORD });
    const res = await browser.get(
      `${app.server.url}/account/activity?before=${encodeURIComponent('0000-01-01T00:00:00.000000Z~1')}`,
    );
    expect(res.status).toBe(200);
  });

  it('a deleted account leaves no address it ever had, nor its names, in any table', async () => {
    const { server, smtp, rp } = app;
    const oldEmail = 'first.address@example.test';
    const newEmail = 'second.address@example.test';
    const user = await server.users.create({
      email: oldEmail,
      password: PASSWORD,
      givenName: 'Ada',
      familyName: 'Quillingham',
      emailVerified: true,
    });
    // An admin command about the user, recorded as the CLI does: by id (server/cli/main.ts).
    await server.audit({
      type: 'user_created',
      outcome: 'success',
      actor: { type: 'admin', id: 'root' },
      subject: user.id,
      detail: { command: 'users create' },
    });

    // The user moves to a new address through the account pages.
    const browser = new Browser();
    await signIn(rp, browser, server.url, { email: oldEmail, password: PASSWORD });
    const url = `${server.url}/account/email`;
    const csrf = hiddenInput(await (await browser.get(url)).text(), 'csrf');
    const before = smtp.messages.length;
    const sent = await browser.post(url, { csrf, email: newEmail, current: PASSWORD });
    expect(await sent.text()).toContain('Check your new inbox');
    const { link } = await linkFromMail(
      smtp,
      newEmail,
      before,
      /https?:\/\/\S+\/account\/email\/confirm\?token=[\w-]+/,
    );
    const confirm = await (await new Browser().get(link)).text();
    const done = await new Browser().post(
      new URL(formAction(confirm, '/account/email/confirm'), server.url),
      { csrf: hiddenInput(confirm, 'csrf'), token: hiddenInput(confirm, 'token') },
    );
    expect(await done.text()).toContain('Your email address was changed');
    expect((await server.users.findById(user.id))?.email).toBe(newEmail);

    // Then deletes the account.
    const deleteUrl = `${server.url}/account/delete`;
    const deleteCsrf = hiddenInput(await (await browser.get(deleteUrl)).text(), 'csrf');
    const deleted = await browser.post(deleteUrl, {
      csrf: deleteCsrf,
      password: PASSWORD,
      understood: '1',
    });
    expect(await deleted.text()).toContain('Your account was deleted');
    expect(await server.users.findById(user.id)).toBeUndefined();

    // Nothing held anywhere still names the person: not the address they left, not the one
    // they had, not their family name.
    const left = {
      oldEmail: await rowsHolding(oldEmail),
      newEmail: await rowsHolding(newEmail),
      familyName: await rowsHolding('Quillingham'),
    };
    expect(left).toEqual({ oldEmail: [], newEmail: [], familyName: [] });
  });
});
