import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiCall, apiClient, documentChecker, type Json } from '../support/admin-api.ts';
import { Browser, formAction, hiddenInput } from '../support/browser.ts';
import { linkFromMail, smtpEnv } from '../support/mailbox.ts';
import { REDIRECT_URI, relyingParty, signIn } from '../support/relying-party.ts';
import { startTestServer, storageEnv, STORAGES, type TestServer } from '../support/server.ts';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp.ts';

const GOOD_PASSWORD = 'violet harbour mango 17 tractor';
const PROBLEM = 'application/problem+json';
const NO_SUCH_ID = '00000000-0000-4000-8000-000000000000';

describe.each(STORAGES)('admin API users (%s)', (storage) => {
  let server: TestServer;
  let smtp: TestSmtpServer;
  let rp: oidc.Configuration;
  let check: ReturnType<typeof documentChecker>;
  let writer: { clientId: string; token: string };
  let reader: { clientId: string; token: string };

  /** One call, checked against the published document. */
  async function call(method: string, template: string, path: string, options = {}) {
    const token = method === 'GET' ? reader.token : writer.token;
    const answer = await apiCall(server, token, method, path, options);
    check(method, template, answer);
    return answer;
  }
  const create = (body: Record<string, unknown>) => call('POST', '/users', '/users', { body });
  const get = (id: string) => call('GET', '/users/{id}', `/users/${id}`);
  const patch = (id: string, body: unknown, headers: Record<string, string> = {}) =>
    call('PATCH', '/users/{id}', `/users/${id}`, { body, headers });
  const auditRows = (type: string, subject: string) =>
    server.db('audit_events').where({ type, subject });

  beforeAll(async () => {
    smtp = await startSmtpServer();
    server = await startTestServer({
      ...(await storageEnv(storage)),
      ...smtpEnv(smtp),
      RATE_LIMIT_ADMIN_API: 'off',
    });
    check = documentChecker((await apiCall(server, undefined, 'GET', '/openapi.json')).body);
    const w = await apiClient(server, ['users:write'], 'User admin job');
    const r = await apiClient(server, ['users:read'], 'User report job');
    writer = { clientId: w.clientId, token: await w.token() };
    reader = { clientId: r.clientId, token: await r.token() };
    const app = await server.clients.create({ name: 'Users app', redirectUris: [REDIRECT_URI] });
    rp = await relyingParty(server.url, app.clientId, app.clientSecret);
  });
  afterAll(async () => {
    await server?.cleanup();
    await smtp?.stop();
  });

  it('creates a user with a password the policy accepts, once per address, audited with the client as actor', async () => {
    const weak = await create({ email: 'weak@example.test', password: 'password1234' });
    expect(weak.status).toBe(400);
    expect(weak.body.errors.map((e: Json) => e.path)).toContain('password');
    const neither = await create({ email: 'neither@example.test' });
    expect(neither.status).toBe(400);

    const made = await create({
      email: 'Grace@example.test',
      givenName: 'Grace',
      familyName: 'Hopper',
      roles: ['staff'],
      emailVerified: true,
      password: GOOD_PASSWORD,
    });
    expect(made.status).toBe(201);
    expect(made.body).toMatchObject({ email: 'Grace@example.test', hasPassword: true });
    expect(JSON.stringify(made.body)).not.toMatch(/argon2|password_hash/);
    expect(made.headers.get('location')).toBe(`/api/v1/users/${made.body.id}`);
    const read = await get(made.body.id);
    expect(read.status).toBe(200);
    expect(read.headers.get('etag')).toBe(made.headers.get('etag'));

    const again = await create({ email: 'grace@EXAMPLE.test', password: GOOD_PASSWORD });
    expect(again.status).toBe(409);
    expect(again.headers.get('content-type')).toContain(PROBLEM);

    const rows = await auditRows('user_created', made.body.id);
    expect(rows).toMatchObject([{ actor_type: 'client', actor_id: writer.clientId }]);
    await signIn(rp, new Browser(), server.url, {
      email: 'grace@example.test',
      password: GOOD_PASSWORD,
    });
    expect((await get(NO_SUCH_ID)).status).toBe(404);
    const put = await apiCall(server, writer.token, 'PUT', `/users/${made.body.id}`);
    expect(put.status).toBe(405);
    expect(put.headers.get('allow')).toBe('GET, PATCH, DELETE');
  });

  it('invites by email: the link sets a password once, and the user signs in with it', async () => {
    const before = smtp.messages.length;
    const made = await create({ email: 'invited@example.test', name: 'Ivy', invite: true });
    expect(made.status).toBe(201);
    expect(made.body).toMatchObject({ hasPassword: false, emailVerified: false });

    const { link } = await linkFromMail(
      smtp,
      'invited@example.test',
      before,
      /https?:\/\/\S+\/reset\?token=[\w-]+/,
    );
    const browser = new Browser();
    const html = await (await browser.get(link)).text();
    const set = await browser.post(new URL(formAction(html, '/reset'), server.url), {
      csrf: hiddenInput(html, 'csrf'),
      token: hiddenInput(html, 'token'),
      password: GOOD_PASSWORD,
      confirm: GOOD_PASSWORD,
    });
    expect(set.status).toBe(200);
    expect(await set.text()).toContain('Your password was changed');
    expect((await new Browser().get(link)).status).toBe(400);

    const tokens = await signIn(rp, new Browser(), server.url, {
      email: 'invited@example.test',
      password: GOOD_PASSWORD,
    });
    expect(tokens.claims()?.sub).toBe(made.body.id);
    expect((await get(made.body.id)).body).toMatchObject({
      hasPassword: true,
      emailVerified: true,
    });
  });

  it('searches by text, role, source, disabled and locked, page by page without gaps or repeats', async () => {
    const made: string[] = [];
    for (let i = 0; i < 7; i++) {
      const res = await create({
        email: `pager${i}@list.test`,
        familyName: i % 2 ? 'Odd-Fellow' : 'Evenson',
        roles: i < 3 ? ['auditor'] : [],
        password: GOOD_PASSWORD,
      });
      made.push(res.body.id);
    }
    await server.db('users').where({ id: made[1] }).update({ disabled: true });
    await server
      .db('users')
      .where({ id: made[2] })
      .update({ locked_until: new Date(Date.now() + 3600_000) });
    await server.db('users').where({ id: made[3] }).update({ owner_locked_at: new Date() });

    async function all(query: string) {
      const seen: Json[] = [];
      let cursor: string | null = null;
      do {
        const path: string = `/users?limit=2&${query}${cursor ? `&cursor=${cursor}` : ''}`;
        const page = await call('GET', '/users', path);
        expect(page.status).toBe(200);
        expect(page.body.items.length).toBeLessThanOrEqual(2);
        seen.push(...page.body.items);
        cursor = page.body.next;
      } while (cursor);
      return seen.map((u) => u.email);
    }
    const emails = (...i: number[]) => i.map((n) => `pager${n}@list.test`);

    expect(await all('q=LIST.TEST')).toEqual(emails(0, 1, 2, 3, 4, 5, 6));
    expect(await all('q=odd-fell')).toEqual(emails(1, 3, 5));
    expect(await all('q=list.test&role=auditor')).toEqual(emails(0, 1, 2));
    expect(await all('q=list.test&disabled=true')).toEqual(emails(1));
    expect(await all('q=list.test&locked=true')).toEqual(emails(2, 3));
    expect(await all('q=list.test&locked=false&disabled=false')).toEqual(emails(0, 4, 5, 6));
    expect(await all('q=list.test&source=ldap')).toEqual([]);

    const bad = await call('GET', '/users', '/users?cursor=bm90LWEtY3Vyc29y');
    expect(bad.status).toBe(400);
    expect((await call('GET', '/users', '/users?locked=maybe')).status).toBe(400);
  });

  it('changes a user only with the current If-Match: of two admins with the same one, exactly one wins', async () => {
    const made = await create({ email: 'contested@example.test', password: GOOD_PASSWORD });
    const etag = made.headers.get('etag')!;
    expect((await patch(made.body.id, { name: 'No tag' })).status).toBe(428);

    const [a, b] = await Promise.all([
      patch(made.body.id, { name: 'Admin A', roles: ['a'] }, { 'if-match': etag }),
      patch(made.body.id, { name: 'Admin B', roles: ['b'] }, { 'if-match': etag }),
    ]);
    expect([a.status, b.status].sort()).toEqual([200, 412]);
    const winner = a.status === 200 ? a : b;
    const now = await get(made.body.id);
    expect(now.body).toMatchObject({ name: winner.body.name, roles: winner.body.roles });
    expect(now.headers.get('etag')).toBe(winner.headers.get('etag'));
    expect(now.headers.get('etag')).not.toBe(etag);

    const stale = await patch(made.body.id, { name: 'Late' }, { 'if-match': etag });
    expect(stale.status).toBe(412);
    expect(stale.body.type).toBe('urn:latchkey:problem:precondition-failed');
    expect((await get(made.body.id)).body.name).toBe(winner.body.name);
    expect(await auditRows('user_updated', made.body.id)).toMatchObject([
      { actor_type: 'client', actor_id: writer.clientId },
    ]);
  });

  it('disabling signs the user out everywhere and ends their refresh tokens', async () => {
    const made = await create({
      email: 'leaver@example.test',
      emailVerified: true,
      password: GOOD_PASSWORD,
    });
    const browser = new Browser();
    const tokens = await signIn(rp, browser, server.url, {
      email: 'leaver@example.test',
      password: GOOD_PASSWORD,
    });
    const res = await patch(
      made.body.id,
      { disabled: true },
      { 'if-match': made.headers.get('etag')! },
    );
    expect(res.status).toBe(200);
    expect(res.body.disabled).toBe(true);
    await expect(oidc.refreshTokenGrant(rp, tokens.refresh_token!)).rejects.toMatchObject({
      error: 'invalid_grant',
    });
    expect(await auditRows('user_disabled', made.body.id)).toMatchObject([
      { actor_type: 'client', actor_id: writer.clientId },
    ]);
  });

  it('moves the email at once when vouched for, else through a link sent to the new address', async () => {
    const made = await create({ email: 'mover@example.test', password: GOOD_PASSWORD });
    const set = await patch(
      made.body.id,
      { email: 'moved@example.test', emailVerified: true },
      { 'if-match': made.headers.get('etag')! },
    );
    expect(set.body).toMatchObject({ email: 'moved@example.test', emailVerified: true });
    const clash = await patch(
      made.body.id,
      { email: 'GRACE@example.test', emailVerified: true },
      { 'if-match': set.headers.get('etag')! },
    );
    expect(clash.status).toBe(409);

    const before = smtp.messages.length;
    const asked = await patch(
      made.body.id,
      { email: 'confirmed@example.test' },
      { 'if-match': set.headers.get('etag')! },
    );
    expect(asked.status).toBe(200);
    expect(asked.body.email).toBe('moved@example.test');
    const { link } = await linkFromMail(
      smtp,
      'confirmed@example.test',
      before,
      /https?:\/\/\S+\/account\/email\/confirm\?token=[\w-]+/,
    );
    const browser = new Browser();
    const html = await (await browser.get(link)).text();
    const done = await browser.post(new URL(formAction(html, '/email/confirm'), server.url), {
      csrf: hiddenInput(html, 'csrf'),
      token: hiddenInput(html, 'token'),
    });
    expect(done.status).toBe(200);
    expect((await get(made.body.id)).body.email).toBe('confirmed@example.test');
  });

  it("refuses to change a directory user's directory fields or delete it, but disables it", async () => {
    const made = await create({ email: 'dir@example.test', password: GOOD_PASSWORD });
    // As a sign-in through the directory links it (server/ldap/linked-users.ts).
    await server.db('users').where({ id: made.body.id }).update({
      source: 'ldap',
      password_hash: null,
      directory_id: 'entry-1',
      directory_dn: 'uid=dir,ou=people,dc=example,dc=test',
      directory_state: 'active',
    });
    const { headers } = await get(made.body.id);
    const renamed = await patch(made.body.id, { name: 'X' }, { 'if-match': headers.get('etag')! });
    expect(renamed.status).toBe(409);
    expect(renamed.body.detail).toContain('directory manages name');
    const off = await patch(made.body.id, { disabled: true }, { 'if-match': headers.get('etag')! });
    expect(off.status).toBe(200);
    const gone = await call('DELETE', '/users/{id}', `/users/${made.body.id}`);
    expect(gone.status).toBe(409);
  });

  it('deletes a user as the account center does: gone, signed out, audited', async () => {
    const made = await create({
      email: 'goner@example.test',
      emailVerified: true,
      password: GOOD_PASSWORD,
    });
    const tokens = await signIn(rp, new Browser(), server.url, {
      email: 'goner@example.test',
      password: GOOD_PASSWORD,
    });
    const res = await call('DELETE', '/users/{id}', `/users/${made.body.id}`);
    expect(res.status).toBe(204);
    expect((await get(made.body.id)).status).toBe(404);
    expect((await call('DELETE', '/users/{id}', `/users/${made.body.id}`)).status).toBe(404);
    await expect(oidc.refreshTokenGrant(rp, tokens.refresh_token!)).rejects.toMatchObject({
      error: 'invalid_grant',
    });
    expect(await auditRows('account_deleted', made.body.id)).toMatchObject([
      { actor_type: 'client', actor_id: writer.clientId },
    ]);
  });
});
