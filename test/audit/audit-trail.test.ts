import { execFile } from 'node:child_process';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import knexFactory, { type Knex } from 'knex';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAudit, userEvent } from '../../server/audit/audit.ts';
import { createLogger } from '../../server/log.ts';
import { Browser } from '../support/browser.ts';
import {
  POST_LOGOUT_URI,
  REDIRECT_URI,
  relyingParty,
  signIn,
  tryLogin,
} from '../support/relying-party.ts';
import { startTestServer, storageEnv, type TestServer } from '../support/server.ts';

const run = promisify(execFile);

const USER = { email: 'audited@example.test', password: 'every step is written down' };

type Row = {
  type: string;
  outcome: string;
  actor_type: string;
  actor_id: string | null;
  subject: string | null;
  ip: string | null;
  request_id: string | null;
  detail: Record<string, unknown>;
};

describe('audit trail', () => {
  let server: TestServer;
  let db: Knex;
  let rp: oidc.Configuration;
  let userId: string;

  beforeAll(async () => {
    server = await startTestServer(await storageEnv('postgres+redis'));
    db = knexFactory({ client: 'pg', connection: server.env.DATABASE_URL });
    userId = (await server.users.create({ ...USER, emailVerified: true })).id;
    const client = await server.clients.create({
      name: 'Audited app',
      redirectUris: [REDIRECT_URI],
      postLogoutRedirectUris: [POST_LOGOUT_URI],
      grantTypes: ['authorization_code', 'refresh_token', 'client_credentials'],
    });
    rp = await relyingParty(server.url, client.clientId, client.clientSecret);
  });
  afterAll(async () => {
    await db?.destroy();
    await server?.cleanup();
  });

  const rows = async (type: string): Promise<Row[]> =>
    db('audit_events').where({ type }).orderBy('id');
  const eventually = async (type: string, count: number) => {
    for (let i = 0; i < 50 && (await rows(type)).length < count; i++)
      await new Promise((r) => setTimeout(r, 50));
    return rows(type);
  };

  it('records failed sign-ins with the reason, and the successful one, never the password', async () => {
    await expect(
      signIn(rp, new Browser(), server.url, { ...USER, password: 'a wrong password here' }),
    ).rejects.toThrow();
    await expect(
      signIn(rp, new Browser(), server.url, {
        email: 'nobody@example.test',
        password: 'whatever it is',
      }),
    ).rejects.toThrow();
    const tokens = await signIn(rp, new Browser(), server.url, USER);
    // A password typed into the email field is not kept at all.
    await expect(
      signIn(rp, new Browser(), server.url, { email: 'typed-my-Secret-here', password: 'x' }),
    ).rejects.toThrow();
    expect(JSON.stringify(await db('audit_events').select())).not.toContain('Secret-here');

    const signIns = (await rows('sign_in')).slice(0, 3);
    expect(signIns.map((r) => [r.outcome, r.detail.reason ?? r.detail.method])).toEqual([
      ['failure', 'wrong_password'],
      ['failure', 'unknown_email'],
      ['success', 'password'],
    ]);
    expect(signIns[0]).toMatchObject({
      subject: userId,
      actor_type: 'user',
      ip: expect.any(String),
      request_id: expect.any(String),
    });
    // An unknown address is kept masked (it might be a password typed in the wrong field).
    expect(signIns[1]!.detail.email).toBe('no***@example.test');
    expect(signIns[0]!.detail.email).toBeUndefined();
    expect(JSON.stringify(signIns)).not.toContain('a wrong password here');
    expect(JSON.stringify(await db('audit_events').select())).not.toContain(USER.password);

    expect(await eventually('consent_granted', 1)).toHaveLength(1);
    expect((await eventually('token_issued', 1))[0]).toMatchObject({
      subject: userId,
      actor_type: 'client',
    });
    await oidc.refreshTokenGrant(rp, tokens.refresh_token!);
    expect(await eventually('token_refreshed', 1)).toHaveLength(1);
    expect(JSON.stringify(await db('audit_events').select())).not.toContain(tokens.refresh_token!);
  });

  it('records a logout and a revoked grant', async () => {
    const browser = new Browser();
    const tokens = await signIn(rp, browser, server.url, USER);
    await oidc.tokenRevocation(rp, tokens.refresh_token!);
    expect((await eventually('grant_revoked', 1)).length).toBeGreaterThanOrEqual(1);
    const end = oidc.buildEndSessionUrl(rp, {
      id_token_hint: tokens.id_token!,
      post_logout_redirect_uri: POST_LOGOUT_URI,
    });
    const page = await browser.follow(await browser.get(end), server.url);
    const html = await page.res.text();
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(html)![1]!;
    await browser.follow(
      await browser.post(new URL(/action="([^"]+)"/.exec(html)![1]!, server.url), {
        xsrf,
        logout: 'yes',
      }),
      server.url,
    );
    expect((await eventually('sign_out', 1))[0]).toMatchObject({ subject: userId });
  });

  it('writes nothing for client_credentials tokens (a hot path)', async () => {
    const before = Number((await db('audit_events').count({ n: '*' }).first())?.n);
    for (let i = 0; i < 5; i++) await oidc.clientCredentialsGrant(rp);
    await new Promise((r) => setTimeout(r, 200));
    expect(Number((await db('audit_events').count({ n: '*' }).first())?.n)).toBe(before);
  });

  it('records what an admin did with the CLI', async () => {
    const leaver = await server.users.create({
      email: 'leaver@example.test',
      password: 'leaving the company soon',
    });
    await run(
      process.execPath,
      ['server/cli/main.ts', 'users', 'disable', '--email', 'leaver@example.test'],
      {
        env: { PATH: process.env.PATH, ...server.env },
      },
    );
    expect((await rows('user_disabled'))[0]).toMatchObject({
      actor_type: 'admin',
      // About the user by id: an address in the trail would outlive the account.
      subject: leaver.id,
      detail: { command: 'users disable' },
    });
  });

  it('does not complete a sign-in whose audit row cannot be written: the page says try again, no row comes later, the retry signs in', async () => {
    const signIns = async () =>
      (await rows('sign_in')).filter((r) => r.outcome === 'success' && r.subject === userId);
    const before = (await signIns()).length;
    // Another session holds the table: the row waits past DEPENDENCY_TIMEOUT_MS, as it would
    // for a PostgreSQL that stopped answering just then.
    const holder = await db.transaction();
    let attempt: Awaited<ReturnType<typeof tryLogin>>;
    try {
      await holder.raw('LOCK TABLE audit_events IN ACCESS EXCLUSIVE MODE');
      attempt = await tryLogin(rp, server.url, USER.email, USER.password);
    } finally {
      await holder.rollback();
    }
    expect(attempt.status).toBe(503);
    expect(attempt.html).toContain('Try again in a moment');
    expect(attempt.html).not.toContain(REDIRECT_URI);
    // Nor is its row written later, once the table is free: PostgreSQL ended the insert too.
    await new Promise((r) => setTimeout(r, 300));
    expect(await signIns()).toHaveLength(before);

    const tokens = await signIn(rp, new Browser(), server.url, USER);
    expect(tokens.access_token).toBeTruthy();
    expect((await signIns()).length).toBeGreaterThan(before);
  });

  it('drops detail fields named like secrets, whatever the caller passes', async () => {
    const audit = createAudit(db, createLogger('silent'));
    await audit({
      type: 'test_event',
      outcome: 'success',
      actor: { type: 'system' },
      detail: {
        password: 'p',
        refresh_token: 't',
        otpCode: '123456',
        clientSecret: 's',
        reason: 'kept',
      },
    });
    expect((await rows('test_event'))[0]!.detail).toEqual({ reason: 'kept' });
  });

  it('writes events that arrive together in one insert, and one bad row loses no other', async () => {
    const logs: string[] = [];
    const sink = new Writable({ write: (chunk, _enc, done) => (logs.push(String(chunk)), done()) });
    const audit = createAudit(db, createLogger('error', sink));
    const statements: string[] = [];
    const seen = (q: { sql: string }) => statements.push(q.sql);
    db.on('query', seen);
    try {
      // PostgreSQL refuses a NUL character in jsonb: that row cannot be written.
      await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          audit({
            type: 'grouped_event',
            outcome: 'success',
            actor: { type: 'system' },
            detail: { n: i, ...(i === 7 && { reason: 'bad\u0000row' }) },
          }),
        ),
      );
    } finally {
      db.off('query', seen);
    }
    const written = (await rows('grouped_event'))
      .map((r) => r.detail.n)
      .sort((a, b) => Number(a) - Number(b));
    expect(written).toEqual([0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11]);
    // The first event alone, then the other 11 together (which fails), then each on its own.
    const inserts = statements.filter((sql) => sql.startsWith('insert into "audit_events"'));
    expect(inserts).toHaveLength(1 + 1 + 11);
    expect(logs.join('')).toContain('audit events not recorded');
  });

  it('writes events nothing waits for a little later, many in one insert, and all of them at a stop', async () => {
    const audit = createAudit(db, createLogger('silent'));
    const statements: string[] = [];
    const seen = (q: { sql: string }) => statements.push(q.sql);
    db.on('query', seen);
    const event = (n: number) => ({
      type: 'later_event',
      outcome: 'success' as const,
      actor: { type: 'system' as const },
      detail: { n },
    });
    try {
      for (let n = 0; n < 5; n++) audit.soon(event(n));
      expect(await eventually('later_event', 5)).toHaveLength(5);
      audit.soon(event(5));
      await audit.flush();
      expect(await rows('later_event')).toHaveLength(6);
    } finally {
      db.off('query', seen);
    }
    const inserts = statements.filter((sql) => sql.startsWith('insert into "audit_events"'));
    expect(inserts).toHaveLength(2);
  });

  it('orders an event told of before a change recorded in its own transaction before it', async () => {
    const audit = createAudit(db, createLogger('silent'));
    // oidc-provider tells of a refresh; then the user removes the app (a row in that change's
    // transaction), before the refresh's row is written.
    audit.soon({
      type: 'ordered_refresh',
      outcome: 'success',
      actor: { type: 'client', id: 'app' },
      subject: 'ordered-user',
    });
    await db.transaction((trx) => audit.within(trx, userEvent('ordered_removal', 'ordered-user')));
    await audit.flush();
    const trail = await db('audit_events')
      .where({ subject: 'ordered-user' })
      .orderBy([{ column: 'at' }, { column: 'id' }]);
    expect(trail.map((row: Row) => row.type)).toEqual(['ordered_refresh', 'ordered_removal']);
  });
});
