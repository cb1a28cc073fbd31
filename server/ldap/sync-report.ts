import type { AuditEvent } from '../audit/audit.ts';
import type { Db } from '../db.ts';
import type { SyncSummary } from './sync-summary.ts';

const STATE_ID = 'ldap';
/** Problems kept with the last run: enough to see what went wrong, bounded for a big directory. */
export const PROBLEMS_KEPT = 20;

/** How the last sync that ran for real (not a dry run) ended. */
export type SyncRun = {
  finishedAt: string;
  outcome: 'success' | 'failure';
  /** Null when it failed before it could read the directory. */
  mode: SyncSummary['mode'] | null;
  created: number;
  updated: number;
  disabled: number;
  errors: number;
  problems: string[];
  /** Why the whole run failed; null when it ran (errors of single entries are `problems`). */
  error: string | null;
  by: AuditEvent['actor'];
};

type Stored = Omit<SyncRun, 'finishedAt'>;

/** Keeps how a real sync ended as the last run, in place of the one before. */
export async function recordSyncRun(
  db: Db,
  by: AuditEvent['actor'],
  ended: { summary: SyncSummary } | { error: Error },
): Promise<void> {
  const report: Stored =
    'summary' in ended
      ? {
          outcome: ended.summary.errors ? 'failure' : 'success',
          mode: ended.summary.mode,
          created: ended.summary.created,
          updated: ended.summary.updated,
          disabled: ended.summary.disabled,
          errors: ended.summary.errors,
          problems: ended.summary.problems.slice(0, PROBLEMS_KEPT),
          error: null,
          by,
        }
      : {
          outcome: 'failure',
          mode: null,
          created: 0,
          updated: 0,
          disabled: 0,
          errors: 0,
          problems: [],
          error: ended.error.message,
          by,
        };
  await db('directory_sync')
    .insert({ id: STATE_ID, last_report: JSON.stringify(report), last_finished_at: db.fn.now() })
    .onConflict('id')
    .merge(['last_report', 'last_finished_at']);
}

/** The last real sync, and when the last full one that succeeded was. */
export async function lastSyncRun(
  db: Db,
): Promise<{ lastRun: SyncRun | null; lastFullSyncAt: Date | null }> {
  const row = (await db('directory_sync').where({ id: STATE_ID }).first()) as
    | {
        last_report: Stored | string | null;
        last_finished_at: Date | null;
        last_full_at: Date | null;
      }
    | undefined;
  const report =
    typeof row?.last_report === 'string' ? JSON.parse(row.last_report) : row?.last_report;
  return {
    lastRun:
      report && row?.last_finished_at
        ? { finishedAt: new Date(row.last_finished_at).toISOString(), ...(report as Stored) }
        : null,
    lastFullSyncAt: row?.last_full_at ? new Date(row.last_full_at) : null,
  };
}
