import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../server/audit/export.ts';
import { archiveAuditEvents, startAuditRetention } from '../../server/audit/retention.ts';
import { closeDb, openDb, type Db } from '../../server/db.ts';
import { migrate } from '../../server/migrate.ts';
import { createLogger } from '../../server/log.ts';
import { freshPostgresUrl } from '../support/databases.ts';

const DAY_MS = 86_400_000;
const DAYS = 30;

/** An ISO time `daysAgo` days back with microseconds, which the archive must keep exactly. */
const ago = (daysAgo: number, second = 0) =>
  new Date(Date.now() - daysAgo * DAY_MS + second * 1000).toISOString().replace('Z', '321Z');

const readArchive = (file: string): AuditRecord[] =>
  gunzipSync(readFileSync(file))
    .toString('utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as AuditRecord);

describe('audit retention', () => {
  let url: string;
  let db: Db;
  let dir: string;
  let settings: { days: number; archiveDir: string };

  /** Inserts one row per time; returns them as the archive should show them, oldest first. */
  async function insert(times: string[]): Promise<AuditRecord[]> {
    const rows = times.map((at, i) => ({
      at,
      type: i % 2 ? 'sign_in' : 'password_changed',
      outcome: i % 3 ? 'success' : 'failure',
      actor_type: 'user',
      actor_id: `user-${i}`,
      subject: `user-${i}`,
      ip: `192.0.2.${i % 250}`,
      user_agent: 'Mozilla/5.0 test',
      request_id: `req-${i}`,
      detail: JSON.stringify({ reason: 'wrong_password', n: i }),
    }));
    const ids: Array<{ id: string }> = await db('audit_events').insert(rows).returning('id');
    return rows
      .map((row, i) => ({ ...row, id: Number(ids[i]!.id), detail: JSON.parse(row.detail) }))
      .sort((a, b) => a.at.localeCompare(b.at));
  }
  const remainingIds = async () => (await db('audit_events').orderBy('id').pluck('id')).map(Number);
  const archives = () => readdirSync(settings.archiveDir).sort();

  beforeAll(async () => {
    url = await freshPostgresUrl();
    db = await openDb({ databaseUrl: url, dataDir: tmpdir(), poolMax: 4 });
    await migrate(db);
  });
  afterAll(async () => {
    if (db) await closeDb(db);
  });
  beforeEach(async () => {
    await db('audit_events').delete();
    dir = mkdtempSync(join(tmpdir(), 'latchkey-retention-'));
    settings = { days: DAYS, archiveDir: join(dir, 'archive') };
    return () => rmSync(dir, { recursive: true, force: true });
  });

  it('moves exactly the rows older than the limit into one gzip JSON Lines file, then deletes them', async () => {
    const old = await insert([ago(400), ago(DAYS + 1, 5), ago(DAYS + 1)]);
    const recent = await insert([ago(DAYS - 1), ago(0)]);

    const summary = await archiveAuditEvents(db, settings);

    const name = (at: string) => `${at.slice(0, 19).replace(/[-:]/g, '')}Z`;
    const file = join(
      settings.archiveDir,
      `audit-${name(old[0]!.at)}-${name(old[2]!.at)}.jsonl.gz`,
    );
    expect(summary).toEqual({ archived: 3, files: [file] });
    expect(archives()).toEqual([file.split('/').pop()]);
    expect(readArchive(file)).toEqual(old);
    expect(await remainingIds()).toEqual(recent.map((r) => r.id).sort((a, b) => a - b));
    // The trail holds IP addresses: owner-only folder and file.
    expect(statSync(settings.archiveDir).mode & 0o777).toBe(0o700);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('a second run archives nothing and writes no empty file', async () => {
    await insert([ago(100), ago(1)]);
    expect((await archiveAuditEvents(db, settings))?.archived).toBe(1);
    expect(await archiveAuditEvents(db, settings)).toEqual({ archived: 0, files: [] });
    expect(archives()).toHaveLength(1);
  });

  it('with days = 0 keeps every row and creates no folder', async () => {
    await insert([ago(4000), ago(400)]);
    expect(await archiveAuditEvents(db, { ...settings, days: 0 })).toEqual({
      archived: 0,
      files: [],
    });
    expect(await remainingIds()).toHaveLength(2);
    expect(existsSync(settings.archiveDir)).toBe(false);
  });

  it('splits a large backlog into files of bounded size, in time order, without a temp file left', async () => {
    const old = await insert(Array.from({ length: 25 }, (_, i) => ago(200, -i)));
    const summary = await archiveAuditEvents(db, settings, { batch: 4, fileRows: 10 });
    expect(summary?.files).toHaveLength(3);
    const lines = summary!.files.map(readArchive);
    expect(lines.map((l) => l.length)).toEqual([10, 10, 5]);
    expect(lines.flat().map((r) => r.id)).toEqual(old.map((r) => r.id));
    expect(archives().filter((f) => !f.endsWith('.jsonl.gz'))).toEqual([]);
    expect(await remainingIds()).toEqual([]);
  });

  it('never overwrites an archive that already has the name', async () => {
    const [row] = await insert([ago(90)]);
    const stamp = `${row!.at.slice(0, 19).replace(/[-:]/g, '')}Z`;
    const taken = join(settings.archiveDir, `audit-${stamp}-${stamp}.jsonl.gz`);
    mkdirSync(settings.archiveDir);
    writeFileSync(taken, 'an earlier archive');
    const summary = await archiveAuditEvents(db, settings);
    expect(summary?.files).toEqual([taken.replace('.jsonl.gz', '-2.jsonl.gz')]);
    expect(readFileSync(taken, 'utf8')).toBe('an earlier archive');
    expect(readArchive(summary!.files[0]!).map((r) => r.id)).toEqual([row!.id]);
  });

  it('keeps the rows when the archive cannot be written', async () => {
    await insert([ago(90), ago(80)]);
    writeFileSync(join(dir, 'not-a-folder'), '');
    await expect(
      archiveAuditEvents(db, { ...settings, archiveDir: join(dir, 'not-a-folder') }),
    ).rejects.toThrow();
    expect(await remainingIds()).toHaveLength(2);
  });

  it('two processes running at once archive every row exactly once', async () => {
    const old = await insert(Array.from({ length: 60 }, (_, i) => ago(60, i)));
    const other = await openDb({ databaseUrl: url, dataDir: tmpdir(), poolMax: 4 });
    // Each process retries until nothing is left, so both keep taking turns at the lock.
    const worker = async (pool: Db) => {
      const files: string[] = [];
      let skipped = 0;
      while ((await remainingIds()).length) {
        const summary = await archiveAuditEvents(pool, settings, { batch: 3, fileRows: 5 });
        if (summary) files.push(...summary.files);
        else skipped++;
      }
      return { files, skipped };
    };
    try {
      const runs = await Promise.all([worker(db), worker(other), worker(db)]);
      const files = runs.flatMap((r) => r.files);
      expect(runs.reduce((n, r) => n + r.skipped, 0)).toBeGreaterThan(0);
      expect(archives()).toEqual(files.map((f) => f.split('/').pop()).sort());
      const archived = files.flatMap(readArchive).map((r) => r.id);
      expect(archived.sort((a, b) => a - b)).toEqual(old.map((r) => r.id).sort((a, b) => a - b));
    } finally {
      await closeDb(other);
    }
  });

  describe('the background job', () => {
    const logger = () => {
      const lines: Array<Record<string, unknown>> = [];
      const sink = new Writable({
        write(chunk, _enc, done) {
          lines.push(JSON.parse(String(chunk)));
          done();
        },
      });
      return { log: createLogger('info', sink), lines };
    };

    it('archives on its schedule and logs a summary line', async () => {
      await insert([ago(90), ago(1)]);
      const { log, lines } = logger();
      const job = startAuditRetention({
        db,
        config: { auditRetention: { ...settings, checkSeconds: 1 } },
        log,
      });
      try {
        for (let i = 0; i < 60 && (await remainingIds()).length > 1; i++)
          await new Promise((r) => setTimeout(r, 50));
      } finally {
        await job.stop();
      }
      expect(await remainingIds()).toHaveLength(1);
      expect(lines).toContainEqual(
        expect.objectContaining({ msg: 'audit events archived', archived: 1 }),
      );
    });

    it('with days = 0 never runs', async () => {
      await insert([ago(90)]);
      const { log, lines } = logger();
      const job = startAuditRetention({
        db,
        config: { auditRetention: { ...settings, days: 0, checkSeconds: 1 } },
        log,
      });
      await new Promise((r) => setTimeout(r, 1300));
      await job.stop();
      expect(await remainingIds()).toHaveLength(1);
      expect(lines).toEqual([]);
    });
  });
});
