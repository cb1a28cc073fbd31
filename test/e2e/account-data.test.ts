import { randomBytes } from 'node:crypto';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, hiddenInput } from '../support/browser.ts';
import { runCli } from '../support/cli.ts';
import { codeAt } from '../support/flow.ts';
import { recipients } from '../support/mailbox.ts';
import { startMailApp, type MailApp } from '../support/mail-app.ts';
import { signIn, tryLogin } from '../support/relying-party.ts';
import { STORAGES, type Storage } from '../support/server.ts';

const PASSWORD = 'quiet harbour lanterns 2026';

/** The base64, base64url and hex spellings of a byte value, as a leak could take any of them. */
const spellings = (bytes: Buffer) => [
  bytes.toString('base64'),
  bytes.toString('base64url'),
  bytes.toString('hex'),
];

/** A server whose users sign in with a password alone (MFA off); factors are still kept. */
function useApp(storage: Storage, env: Record<string, string> = {}) {
  const holder = {} as { app: MailApp };
  beforeAll(async () => {
    holder.app = await startMailApp({
      storage,
      clientName: 'Data app',
      env: { MFA_POLICY: 'off', ...env },
    });
  });
  afterAll(async () => {
    await holder.app?.stop();
  });
  return holder;
}

/** A signed-in user with a bit of everything: a session and grant, factors, a link, history. */
async function richUser({ server, rp }: MailApp, email: string) {
  const user = await server.users.create({
    email,
    password: PASSWORD,
    givenName: 'Grace',
    familyName: 'Hopper',
    name: 'Grace Hopper',
    roles: ['auditor'],
    emailVerified: true,
  });
  const { secret } = await server.mfa.totp.offer(user, 'test');
  expect(await server.mfa.totp.confirm(user, 'test', await codeAt(secret))).toBe(true);
  const recoveryCodes = await server.mfa.recovery.regenerate(user.id);
  const passkeyId = randomBytes(32).toString('base64url');
  const publicKey = randomBytes(77);
  await server.db('webauthn_credentials').insert({
    id: passkeyId,
    user_id: user.id,
    public_key: publicKey,
    device_type: 'multiDevice',
    name: 'Work laptop',
    transports: JSON.stringify(['internal']),
  });
  const emailToken = await server.tokens.issue(user.id, 'verify_email', 3600);
  await server.db('password_history').insert({
    user_id: user.id,
    password_hash: await server.users.hashPassword('an older password 1999'),
  });
  const browser = new Browser();
  const tokens = await signIn(rp, browser, server.url, { email, password: PASSWORD });
  return { user, browser, tokens, secret, recoveryCodes, passkeyId, publicKey, emailToken };
}

describe.each(STORAGES)('download my data and delete my account (%s)', (storage) => {
  const on = useApp(storage);

  async function download(browser: Browser) {
    const url = `${on.app.server.url}/account/export`;
    const page = await browser.get(url);
    expect(page.status).toBe(200);
    return browser.post(url, { csrf: hiddenInput(await page.text(), 'csrf') });
  }

  it('downloads one JSON file holding the profile, roles, consents, grants, sessions, devices, factors and audit events', async () => {
    const { user, browser } = await richUser(on.app, 'export.me@example.test');
    const res = await download(browser);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-disposition')).toMatch(
      /^attachment; filename="[\w.-]+\.json"$/,
    );
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const data = JSON.parse(await res.text());

    expect(data.format).toBe('latchkey-account-export/1');
    expect(data.profile).toMatchObject({
      id: user.id,
      email: 'export.me@example.test',
      emailVerified: true,
      givenName: 'Grace',
      familyName: 'Hopper',
      source: 'local',
    });
    expect(data.roles).toEqual(['auditor']);
    expect(data.consents).toEqual([
      expect.objectContaining({ clientName: 'Data app', scope: expect.stringContaining('openid') }),
    ]);
    expect(data.grants).toEqual([
      expect.objectContaining({ scope: expect.stringContaining('offline_access') }),
    ]);
    expect(data.sessions).toEqual([expect.objectContaining({ thisSession: true })]);
    expect(data.sessions[0].apps).toHaveLength(1);
    expect(data.knownDevices).toHaveLength(1);
    expect(data.secondFactors.authenticatorApp.confirmedAt).toEqual(expect.any(String));
    expect(data.secondFactors.recoveryCodes).toEqual({ total: 10, used: 0 });
    expect(data.secondFactors.passkeys).toEqual([
      expect.objectContaining({ name: 'Work laptop', type: 'synced', transports: ['internal'] }),
    ]);
    expect(data.passwordChanges).toHaveLength(1);
    expect(data.emailLinks).toEqual([expect.objectContaining({ purpose: 'verify_email' })]);
    expect(data.auditEvents.map((e: { type: string }) => e.type)).toContain('sign_in');
  });

  it('puts no secret, hash, token, seed or session id in the file', async () => {
    const { server } = on.app;
    const rich = await richUser(on.app, 'no.secrets@example.test');
    const raw = await (await download(rich.browser)).text();
    const id = rich.user.id;
    const [userRow] = await server.db('users').where({ id });
    const totp = await server.db('totp_factors').where({ user_id: id }).first();
    const recovery = await server.db('recovery_codes').where({ user_id: id });
    const history = await server.db('password_history').where({ user_id: id });
    const links = await server.db('email_tokens').where({ user_id: id });
    const sessions = await server.adapter.sessionsOf(id);
    const grants = await server.adapter.grantsOf(id);
    const sids = sessions.flatMap((s) =>
      Object.values(s.payload.authorizations ?? {}).map((a) => a.sid),
    );
    const secrets = [
      PASSWORD,
      userRow.password_hash,
      totp.secret_sealed,
      rich.secret,
      ...rich.recoveryCodes,
      ...recovery.map((r) => r.code_hash),
      ...history.map((h) => h.password_hash),
      rich.emailToken,
      ...links.map((l) => l.token_hash),
      rich.passkeyId,
      ...spellings(rich.publicKey),
      ...sessions.map((s) => s.id),
      ...sids,
      ...grants.map((g) => g.id),
      rich.tokens.access_token,
      rich.tokens.refresh_token,
      rich.tokens.id_token,
    ];
    expect(sessions).toHaveLength(1);
    expect(grants).toHaveLength(1);
    for (const secret of secrets) {
      expect(typeof secret === 'string' && secret.length >= 6, String(secret)).toBe(true);
      const at = raw.indexOf(secret as string);
      expect(at, `the file holds ${secret}: ${raw.slice(at - 200, at + 50)}`).toBe(-1);
    }
  });

  it('deletes the account after the password and a tick: sign-in fails, tokens die, the audit trail keeps the id without the email', async () => {
    const { server, smtp, rp } = on.app;
    const email = 'leaving.now@example.test';
    const rich = await richUser(on.app, email);
    const other = new Browser();
    await signIn(rp, other, server.url, { email, password: PASSWORD });
    // An admin command is recorded about the address it named (server/cli/main.ts).
    await server.audit({
      type: 'user_disabled',
      outcome: 'success',
      actor: { type: 'admin', id: 'root' },
      subject: email,
      detail: { command: 'users disable' },
    });

    const url = `${server.url}/account/delete`;
    const csrf = hiddenInput(await (await rich.browser.get(url)).text(), 'csrf');
    const wrong = await rich.browser.post(url, { csrf, password: 'not it', understood: '1' });
    expect(wrong.status).toBe(400);
    const unticked = await rich.browser.post(url, { csrf, password: PASSWORD });
    expect(await unticked.text()).toContain('Tick the box');
    expect(await server.users.findById(rich.user.id)).toBeDefined();

    const before = smtp.messages.length;
    const done = await rich.browser.post(url, { csrf, password: PASSWORD, understood: '1' });
    expect(done.status).toBe(200);
    expect(await done.text()).toContain('Your account was deleted');

    expect(await server.users.findById(rich.user.id)).toBeUndefined();
    for (const table of [
      'totp_factors',
      'recovery_codes',
      'webauthn_credentials',
      'known_devices',
      'password_history',
      'email_tokens',
    ])
      expect(await server.db(table).where({ user_id: rich.user.id }), table).toEqual([]);
    expect(await server.db('consents').where({ account_id: rich.user.id })).toEqual([]);
    expect(await server.adapter.sessionsOf(rich.user.id)).toEqual([]);
    expect(await server.adapter.grantsOf(rich.user.id)).toEqual([]);
    await expect(oidc.refreshTokenGrant(rp, rich.tokens.refresh_token!)).rejects.toMatchObject({
      error: 'invalid_grant',
    });
    const again = await tryLogin(rp, server.url, email, PASSWORD);
    expect(again.status).toBe(400);
    expect(again.html).toContain('incorrect');
    expect((await other.get(`${server.url}/account/export`)).status).toBe(303);

    const audit = await server.db('audit_events').select('subject', 'type', 'detail');
    const trail = audit.filter((row) => row.subject === rich.user.id).map((row) => row.type);
    expect(trail).toEqual(expect.arrayContaining(['sign_in', 'user_disabled', 'account_deleted']));
    expect(JSON.stringify(audit)).not.toContain(email);
    expect(JSON.stringify(audit)).not.toContain('Hopper');

    const mail = await smtp.waitForMessage(
      (m) => smtp.messages.indexOf(m) >= before && recipients(m).includes(email),
      5000,
    );
    expect(mail.subject).toMatch(/account was deleted/);
  });

  it('refuses deletion to a directory user', async () => {
    const { server, rp } = on.app;
    const email = 'from.the.directory@example.test';
    const browser = new Browser();
    const user = await server.users.create({ email, password: PASSWORD, emailVerified: true });
    await signIn(rp, browser, server.url, { email, password: PASSWORD });
    // The row as the directory's sign-in and sync keep it (the password then checked there).
    await server
      .db('users')
      .where({ id: user.id })
      .update({ source: 'ldap', directory_id: `entry-${user.id}` });

    const page = await browser.get(`${server.url}/account/delete`);
    expect(page.status).toBe(403);
    const html = await page.text();
    expect(html).toContain('managed by your organisation');
    expect(html).not.toContain('name="csrf"');
    const post = await browser.post(`${server.url}/account/delete`, {
      password: PASSWORD,
      understood: '1',
    });
    expect(post.status).toBe(403);
    expect(await server.users.findById(user.id)).toBeDefined();
  });
});

// PGlite admits one process at a time: the CLI runs beside a server on PostgreSQL.
describe('latchkey users delete (postgres+redis)', () => {
  const on = useApp('postgres+redis');

  it('lets the admin CLI delete an account with the same effect', async () => {
    const { server, smtp } = on.app;
    const email = 'removed.by.admin@example.test';
    const rich = await richUser(on.app, email);
    const before = smtp.messages.length;
    const result = await runCli(['users', 'delete', '--email', email], server.env);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(await server.users.findById(rich.user.id)).toBeUndefined();
    expect(await server.db('totp_factors').where({ user_id: rich.user.id })).toEqual([]);
    expect(await server.adapter.sessionsOf(rich.user.id)).toEqual([]);
    expect((await rich.browser.get(`${server.url}/account/export`)).status).toBe(303);
    const [deleted] = await server.db('audit_events').where({ type: 'account_deleted' }).select();
    expect(deleted).toBeDefined();
    const rows = await server.db('audit_events').where({ subject: rich.user.id });
    expect(rows.map((r) => r.type)).toContain('account_deleted');
    expect(JSON.stringify(await server.db('audit_events'))).not.toContain(email);
    await smtp.waitForMessage(
      (m) => smtp.messages.indexOf(m) >= before && recipients(m).includes(email),
      5000,
    );
    expect((await runCli(['users', 'delete', '--email', email], server.env)).code).toBe(1);
  });

  it('refuses a directory user', async () => {
    const { server } = on.app;
    const email = 'directory.cli@example.test';
    const user = await server.users.create({ email, password: PASSWORD, emailVerified: true });
    await server
      .db('users')
      .where({ id: user.id })
      .update({ source: 'ldap', directory_id: `entry-${user.id}` });
    const cli = await runCli(['users', 'delete', '--email', email], server.env);
    expect(cli.code).toBe(1);
    expect(cli.stderr).toContain('is a directory user: remove it in the directory');
    expect(await server.users.findById(user.id)).toBeDefined();
  });
});

describe('with ACCOUNT_DELETION=false', () => {
  const on = useApp('embedded', { ACCOUNT_DELETION: 'false' });

  it('refuses a local user the deletion page and its form', async () => {
    const { server, rp } = on.app;
    const email = 'wants.out@example.test';
    const browser = new Browser();
    await server.users.create({ email, password: PASSWORD, emailVerified: true });
    await signIn(rp, browser, server.url, { email, password: PASSWORD });
    const page = await browser.get(`${server.url}/account/delete`);
    expect(page.status).toBe(403);
    expect(await page.text()).toContain('Accounts cannot be deleted here');
    const post = await browser.post(`${server.url}/account/delete`, {
      password: PASSWORD,
      understood: '1',
    });
    expect(post.status).toBe(403);
    expect(await server.users.findByEmail(email)).toBeDefined();
  });
});
