import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../config/load.ts';
import type { AuditRecord } from '../../server/audit/export.ts';
import { closeDb, openDb, type Db } from '../../server/db.ts';
import { createLogger } from '../../server/log.ts';
import { migrate } from '../../server/migrate.ts';
import { createServices } from '../../server/services.ts';
import { runCli } from '../support/cli.ts';
import { freshPostgresUrl } from '../support/databases.ts';
import { TEST_SECRETS } from '../support/server.ts';

const EMAIL = 'audited@example.test';
const RECENT = new Date(Date.now() - 86_400_000).toISOString().replace('Z', '000Z');

const parseLines = (text: string): AuditRecord[] =>
  text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as AuditRecord);

describe.each(['postgres', 'embedded'] as const)('latchkey audit on %s', (storage) => {
  let env: Record<string, string>;
  let userId: string;

  const cli = (...args: string[]) => runCli(args, env);

  /** Opens the database only while `job` runs: PGlite admits one process at a time. */
  async function withDb<T>(job: (db: Db) => Promise<T>): Promise<T> {
    const db = await openDb({ databaseUrl: env.DATABASE_URL, dataDir: env.DATA_DIR!, poolMax: 2 });
    try {
      return await job(db);
    } finally {
      await closeDb(db);
    }
  }
  const typesInTable = () =>
    withDb(async (db) => (await db('audit_events').orderBy('id').pluck('type')) as string[]);

  beforeAll(async () => {
    env = {
      NODE_ENV: 'test',
      DATA_DIR: mkdtempSync(join(tmpdir(), 'latchkey-audit-cli-')),
      AUDIT_RETENTION_DAYS: '30',
      ...(storage === 'postgres' && { DATABASE_URL: await freshPostgresUrl() }),
      ...TEST_SECRETS,
    };
    await withDb(async (db) => {
      await migrate(db);
      const { users } = createServices({
        config: loadConfig(env),
        db,
        log: createLogger('silent'),
      });
      userId = (await users.create({ email: EMAIL, password: 'a long test password' })).id;
      const row = (type: string, at: string, actor: string, subject: string) => ({
        type,
        at,
        outcome: 'success',
        actor_type: actor === 'root' ? 'admin' : 'user',
        actor_id: actor,
        subject,
        ip: '192.0.2.7',
        user_agent: 'test agent',
        request_id: `req-${type}`,
        detail: JSON.stringify({ type }),
      });
      // Inserted out of time order: the export sorts by time, not by id.
      await db('audit_events').insert([
        row('token_issued', '2025-02-05T00:00:00.000000Z', userId, 'client-x'),
        row('sign_in', '2025-01-10T08:30:00.250000Z', userId, userId),
        row('client_created', '2025-01-20T00:00:00.000000Z', 'root', 'client-x'),
        row('password_changed', RECENT, userId, userId),
      ]);
    });
  });
  afterAll(() => {
    if (env) rmSync(env.DATA_DIR!, { recursive: true, force: true });
  });

  it('audit export prints every row as JSON Lines, oldest first, with all its fields', async () => {
    const res = await cli('audit', 'export');
    expect(res).toMatchObject({ code: 0, stderr: '' });
    expect(res.stdout.endsWith('}\n')).toBe(true);
    const lines = parseLines(res.stdout);
    expect(lines.map((l) => l.type)).toEqual([
      'sign_in',
      'client_created',
      'token_issued',
      'password_changed',
    ]);
    expect(lines[0]).toEqual({
      id: 2,
      at: '2025-01-10T08:30:00.250000Z',
      type: 'sign_in',
      outcome: 'success',
      actor_type: 'user',
      actor_id: userId,
      subject: userId,
      ip: '192.0.2.7',
      user_agent: 'test agent',
      request_id: 'req-sign_in',
      detail: { type: 'sign_in' },
    });
  });

  it('--since is inclusive and --until exclusive', async () => {
    const res = await cli('audit', 'export', '--since', '2025-01-20', '--until', '2025-02-05');
    expect(res.code).toBe(0);
    expect(parseLines(res.stdout).map((l) => l.type)).toEqual(['client_created']);
    const later = await cli('audit', 'export', '--since', '2025-01-20T00:00:00.001Z');
    expect(parseLines(later.stdout).map((l) => l.type)).toEqual([
      'token_issued',
      'password_changed',
    ]);
  });

  it('--user takes an email or an id and matches the user as subject or actor', async () => {
    const expected = ['sign_in', 'token_issued', 'password_changed'];
    for (const user of [EMAIL, userId]) {
      const res = await cli('audit', 'export', '--user', user);
      expect(res.code).toBe(0);
      expect(parseLines(res.stdout).map((l) => l.type)).toEqual(expected);
    }
    const root = await cli('audit', 'export', '--user', 'root', '--until', '2025-02-01');
    expect(parseLines(root.stdout).map((l) => l.type)).toEqual(['client_created']);
  });

  it.each([
    [['--since', 'yesterday'], /^latchkey: --since must be an ISO 8601 date or time/],
    [['--until', '2025-13-45'], /^latchkey: --until must be an ISO 8601 date or time/],
    [['--since', '2025-02-01', '--until', '2025-01-01'], /^latchkey: --since must be before/],
    [['--user', 'nobody@example.test'], /^latchkey: no user with email nobody@example.test/],
  ])('audit export %j is a usage error', async (args, message) => {
    const res = await cli('audit', 'export', ...args);
    expect(res.code).toBe(1);
    expect(res.stdout).toBe('');
    expect(res.stderr).toMatch(message);
    expect(res.stderr).toContain('latchkey <command>');
  });

  it('audit prune archives the rows past retention, deletes them and is itself audited', async () => {
    const res = await cli('audit', 'prune');
    expect(res).toMatchObject({ code: 0, stderr: '' });
    const archive = join(
      env.DATA_DIR!,
      'audit-archive',
      'audit-20250110T083000Z-20250205T000000Z.jsonl.gz',
    );
    expect(res.stdout).toBe(`archived 3 audit rows older than 30 days to:\n${archive}\n`);
    const archived = parseLines(gunzipSync(readFileSync(archive)).toString('utf8'));
    expect(archived.map((l) => [l.type, l.at])).toEqual([
      ['sign_in', '2025-01-10T08:30:00.250000Z'],
      ['client_created', '2025-01-20T00:00:00.000000Z'],
      ['token_issued', '2025-02-05T00:00:00.000000Z'],
    ]);
    expect(await typesInTable()).toEqual(['password_changed', 'audit_pruned']);
    const pruned = await withDb((db) => db('audit_events').where({ type: 'audit_pruned' }).first());
    expect(pruned).toMatchObject({ actor_type: 'admin', detail: { command: 'audit prune' } });

    const again = await cli('audit', 'prune');
    expect(again).toMatchObject({ code: 0, stdout: 'no audit rows older than 30 days\n' });
  });

  it('audit export shows how many refusals a counted row stands for, and when the last was', async () => {
    await withDb((db) =>
      db('audit_events').insert({
        type: 'sign_in',
        at: '2030-01-01T00:00:00.000000Z',
        last_at: '2030-01-01T00:14:59.500000Z',
        outcome: 'failure',
        actor_type: 'user',
        ip: '198.51.100.9',
        detail: JSON.stringify({ reason: 'unknown_email' }),
        count: 200,
        aggregate_key: 'some-key',
      }),
    );
    const res = await cli('audit', 'export', '--since', '2030-01-01');
    expect(res.code).toBe(0);
    expect(parseLines(res.stdout)).toEqual([
      expect.objectContaining({
        type: 'sign_in',
        at: '2030-01-01T00:00:00.000000Z',
        count: 200,
        last_at: '2030-01-01T00:14:59.500000Z',
      }),
    ]);
  });
});
