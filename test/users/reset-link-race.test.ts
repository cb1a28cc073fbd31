import type { Knex } from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resetLink } from '../../server/users/reset-link.ts';
import { Browser, formAction, hiddenInput } from '../support/browser.ts';
import { STORAGES, startTestServer, storageEnv, type TestServer } from '../support/server.ts';

describe.each(STORAGES)('one reset link posted twice at the same time (%s)', (storage) => {
  let server: TestServer;
  let db: Knex;

  beforeAll(async () => {
    server = await startTestServer(await storageEnv(storage));
    db = server.db;
  });
  afterAll(async () => {
    await server?.cleanup();
  });

  it('changes the password once: one POST succeeds, the other is told the link was used', async () => {
    const email = 'race-reset@example.test';
    const user = await server.users.create({
      email,
      password: 'the first password of the race',
      emailVerified: true,
    });
    const browser = new Browser();
    const html = await (await browser.get(await resetLink(server, user))).text();
    const action = new URL(formAction(html, '/reset'), server.url);
    const base = { csrf: hiddenInput(html, 'csrf'), token: hiddenInput(html, 'token') };
    const passwords = ['granite feather 88 lighthouse oval', 'copper meadow 41 violin harbour'];

    const answers = await Promise.all(
      passwords.map(async (password) => {
        const res = await browser.post(action, { ...base, password, confirm: password });
        return { status: res.status, text: await res.text() };
      }),
    );

    const done = answers.filter((a) => a.text.includes('Your password was changed'));
    const refused = answers.filter((a) => a.text.includes('This link was already used'));
    expect(done).toHaveLength(1);
    expect(refused).toHaveLength(1);
    const works = await Promise.all(passwords.map((p) => server.users.authenticate(email, p)));
    expect(works.filter(Boolean)).toHaveLength(1);
    expect(
      await db('audit_events').where({ type: 'password_reset', subject: user.id }),
    ).toHaveLength(1);
    expect(await db('password_history').where({ user_id: user.id })).toHaveLength(1);
  });
});
