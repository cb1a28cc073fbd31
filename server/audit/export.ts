import { once } from 'node:events';
import type { Writable } from 'node:stream';
import type { Knex } from 'knex';

/** Which audit rows to read: since ≤ at < until (either open), about or by one user. */
export type AuditFilter = { since?: Date | undefined; until?: Date | undefined; user?: string };

/** One audit row as a line of an export or an archive. */
export type AuditRecord = {
  id: number;
  /** ISO 8601 in UTC with PostgreSQL's microseconds, so a line keeps the exact time. */
  at: string;
  type: string;
  outcome: string;
  actor_type: string;
  actor_id: string | null;
  subject: string | null;
  ip: string | null;
  user_agent: string | null;
  request_id: string | null;
  detail: Record<string, unknown>;
  /** On a row standing for alike refusals (server/audit/audit.ts): how many, and the last's time. */
  count?: number;
  last_at?: string;
};

/** Rows per query: a few MB at most in memory, few round trips. */
export const AUDIT_BATCH = 5_000;

const iso = (column: string) =>
  `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
const COLUMNS = [
  'id',
  'type',
  'outcome',
  'actor_type',
  'actor_id',
  'subject',
  'ip',
  'user_agent',
  'request_id',
  'detail',
  'count',
];

/**
 * The rows matching `filter`, oldest first, read `batch` at a time and at most `limit` in all.
 * Pages by (at, id) rather than by offset, so each query starts where the last one ended; the
 * cursor carries the microsecond text of `at`, which a JavaScript Date would round.
 */
export async function* auditRecords(
  db: Knex,
  filter: AuditFilter,
  { batch = AUDIT_BATCH, limit = Infinity } = {},
): AsyncGenerator<AuditRecord> {
  let after: AuditRecord | undefined;
  for (let left = limit; left > 0;) {
    const query = db('audit_events')
      .select(db.raw(`${iso('at')} AS at_iso, ${iso('last_at')} AS last_at_iso`), ...COLUMNS)
      .orderBy([{ column: 'at' }, { column: 'id' }])
      .limit(Math.min(batch, left));
    if (filter.since) query.where('at', '>=', filter.since);
    if (filter.until) query.where('at', '<', filter.until);
    if (filter.user) {
      const user = filter.user;
      query.where((q) => q.where('subject', user).orWhere('actor_id', user));
    }
    if (after) query.whereRaw('(at, id) > (?::timestamptz, ?)', [after.at, after.id]);
    const rows: Row[] = await query;
    for (const row of rows) {
      after = toRecord(row);
      yield after;
    }
    if (rows.length < Math.min(batch, left)) return;
    left -= rows.length;
  }
}

type Row = Omit<AuditRecord, 'at' | 'count' | 'last_at'> & {
  at_iso: string;
  last_at_iso: string | null;
  count: number | string;
};

// pg gives a bigint as a string and PGlite as a number; jsonb may come back as text. Only a row
// standing for several refusals has a last_at: only its line says count and last_at.
function toRecord({ at_iso, last_at_iso, count, id, detail, ...rest }: Row): AuditRecord {
  return {
    id: Number(id),
    at: at_iso,
    ...rest,
    detail: typeof detail === 'string' ? JSON.parse(detail) : detail,
    ...(last_at_iso && { count: Number(count), last_at: last_at_iso }),
  };
}

export function toJsonLine(record: AuditRecord): string {
  return `${JSON.stringify(record)}\n`;
}

/** Writes the matching rows as JSON Lines to `out`, waiting when it is full; returns the count. */
export async function exportAuditEvents(
  db: Knex,
  filter: AuditFilter,
  out: Writable,
): Promise<number> {
  let count = 0;
  for await (const record of auditRecords(db, filter)) {
    count++;
    if (!out.write(toJsonLine(record))) await once(out, 'drain');
  }
  return count;
}
