import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { link, mkdir, open, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { Knex } from 'knex';
import type { Config } from '../../config/load.ts';
import type { Db } from '../db.ts';
import { withAdvisoryLock } from '../locks.ts';
import type { Logger } from '../log.ts';
import { AUDIT_BATCH, auditRecords, toJsonLine } from './export.ts';

export type RetentionSettings = Config['auditRetention'];
export type RetentionSummary = { archived: number; files: string[] };
export type RetentionOptions = {
  now?: Date;
  /** Rows per query and per DELETE. */
  batch?: number;
  /** Rows per file: their ids stay in memory until the file is on disk and they are deleted. */
  fileRows?: number;
  /** Checked between files: a stopping server ends the run there. */
  signal?: AbortSignal;
};

const DAY_MS = 86_400_000;
const FILE_ROWS = 50_000;
const LOCK = 'audit-retention';

/**
 * Moves audit rows older than `days` into gzip JSON Lines files in `archiveDir`, oldest first,
 * and deletes them. Each file is its own transaction under an advisory lock: written, fsynced,
 * given its final name, and only then are exactly its rows deleted. A failure before the commit
 * leaves the rows in the table (a later run archives them again), never rows in no file.
 * Undefined when another process holds the lock; days = 0 keeps everything.
 */
export async function archiveAuditEvents(
  db: Db,
  { days, archiveDir }: Pick<RetentionSettings, 'days' | 'archiveDir'>,
  { now = new Date(), batch = AUDIT_BATCH, fileRows = FILE_ROWS, signal }: RetentionOptions = {},
): Promise<RetentionSummary | undefined> {
  const summary: RetentionSummary = { archived: 0, files: [] };
  if (days <= 0) return summary;
  const cutoff = new Date(now.getTime() - days * DAY_MS);
  // The trail holds IP addresses: only the server's user may read the archives.
  await mkdir(archiveDir, { recursive: true, mode: 0o700 });
  while (!signal?.aborted) {
    const file = await withAdvisoryLock(db, LOCK, (trx) =>
      archiveOneFile(trx, cutoff, archiveDir, batch, fileRows),
    );
    if (file === undefined) return summary.files.length ? summary : undefined;
    if (!file) break;
    summary.archived += file.rows;
    summary.files.push(file.path);
    if (file.rows < fileRows) break;
  }
  return summary;
}

type ArchivedFile = { path: string; rows: number };

async function archiveOneFile(
  trx: Knex.Transaction,
  cutoff: Date,
  dir: string,
  batch: number,
  fileRows: number,
): Promise<ArchivedFile | null> {
  if (!(await trx('audit_events').where('at', '<', cutoff).first('id'))) return null;
  const ids: number[] = [];
  let first = '';
  let last = '';
  async function* lines() {
    for await (const record of auditRecords(trx, { until: cutoff }, { batch, limit: fileRows })) {
      ids.push(record.id);
      first ||= record.at;
      last = record.at;
      yield toJsonLine(record);
    }
  }
  const temp = join(dir, `.audit-${randomUUID()}.tmp`);
  let path: string;
  try {
    await pipeline(
      lines,
      createGzip(),
      createWriteStream(temp, { flags: 'wx', mode: 0o600, flush: true }),
    );
    if (!ids.length) return null;
    path = await publish(temp, dir, `audit-${stamp(first)}-${stamp(last)}`);
  } finally {
    await unlink(temp).catch(() => undefined);
  }
  for (let i = 0; i < ids.length; i += batch)
    await trx('audit_events')
      .whereIn('id', ids.slice(i, i + batch))
      .delete();
  return { path, rows: ids.length };
}

/** "2025-01-31T12:00:00.123456Z" → "20250131T120000Z": sortable, and safe in any file system. */
function stamp(iso: string): string {
  return `${iso.slice(0, 19).replace(/[-:]/g, '')}Z`;
}

/**
 * Gives the finished file its name without ever replacing an archive: link() refuses an
 * existing name (rename would overwrite it), so a clash takes the next suffix. The folder is
 * fsynced so the new name survives a crash.
 */
async function publish(temp: string, dir: string, base: string): Promise<string> {
  for (let n = 1; ; n++) {
    const path = join(dir, `${base}${n > 1 ? `-${n}` : ''}.jsonl.gz`);
    try {
      await link(temp, path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw err;
    }
    const folder = await open(dir, 'r');
    await folder.sync().finally(() => folder.close());
    return path;
  }
}

/**
 * Runs the archive every `checkSeconds` in the background; failures are logged. stop() ends
 * the schedule and waits for a run in progress to finish its current file.
 */
export function startAuditRetention({
  db,
  config,
  log,
}: {
  db: Db;
  config: Pick<Config, 'auditRetention'>;
  log: Logger;
}): { stop(): Promise<void> } {
  const settings = config.auditRetention;
  if (settings.days <= 0) return { stop: async () => undefined };
  const stopping = new AbortController();
  let running: Promise<void> | undefined;
  const timer = setInterval(() => {
    running ??= archiveAuditEvents(db, settings, { signal: stopping.signal })
      .then((summary) => {
        if (summary?.archived)
          log.info({ archived: summary.archived, files: summary.files }, 'audit events archived');
      })
      .catch((err) => log.error({ err }, 'audit retention failed'))
      .finally(() => (running = undefined));
  }, settings.checkSeconds * 1000).unref();
  return {
    async stop() {
      clearInterval(timer);
      stopping.abort();
      await running;
    },
  };
}
