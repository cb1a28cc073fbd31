import { once } from 'node:events';
import type { Writable } from 'node:stream';
import type { Knex } from 'knex';

/**
 * Which audit rows to read: since ≤ at < until (either open); about or by one user (`user`: the
 * subject or the actor); of some types; by one actor; about one subject; of one outcome.
 */
export type AuditFilter = {
  since?: Date | undefined;
  until?: Date | undefined;
  user?: string | undefined;
  types?: string[] | undefined;
  actor?: string | undefined;
  subject?: string | undefined;
  outcome?: string | undefined;
};

/** Where a read of the trail resumes: after the row at this (exact, text) time with this id. */
export type AuditPosition = { at: string; id: number };

export type AuditReadOptions = {
  batch?: number;
  limit?: number;
  /** Oldest first (an export, an archive) or newest first (a page of the admin API). */
  order?: 'asc' | 'desc';
  after?: AuditPosition | undefined;
};

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

function matching(query: Knex.QueryBuilder, filter: AuditFilter): Knex.QueryBuilder {
  const { since, until, user, types, actor, subject, outcome } = filter;
  if (since) query.where('at', '>=', since);
  if (until) query.where('at', '<', until);
  if (user) query.where((q) => q.where('subject', user).orWhere('actor_id', user));
  if (types?.length) query.whereIn('type', types);
  if (actor !== undefined) query.where('actor_id', actor);
  if (subject !== undefined) query.where('subject', subject);
  if (outcome !== undefined) query.where('outcome', outcome);
  return query;
}

/**
 * The rows matching `filter`, oldest first (or newest), read `batch` at a time and at most
 * `limit` in all. Pages by (at, id) rather than by offset, so each query starts where the last
 * one ended; the position carries the microsecond text of `at`, which a JavaScript Date would
 * round. The indexes on (at), (type, at), (subject, at) and (actor_id, at) serve the filters.
 */
export async function* auditRecords(
  db: Knex,
  filter: AuditFilter,
  { batch = AUDIT_BATCH, limit = Infinity, order = 'asc', after }: AuditReadOptions = {},
): AsyncGenerator<AuditRecord> {
  const beyond = order === 'asc' ? '>' : '<';
  for (let left = limit; left > 0;) {
    const query = matching(db('audit_events'), filter)
      .select(db.raw(`${iso('at')} AS at_iso, ${iso('last_at')} AS last_at_iso`), ...COLUMNS)
      .orderBy([
        { column: 'at', order },
        { column: 'id', order },
      ])
      .limit(Math.min(batch, left));
    if (after) query.whereRaw(`(at, id) ${beyond} (?::timestamptz, ?)`, [after.at, after.id]);
    const rows: Row[] = await query;
    for (const row of rows) {
      const record = toRecord(row);
      after = record;
      yield record;
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

/** The matching rows as JSON Lines, oldest first, read from the table as they are consumed. */
export async function* auditJsonLines(db: Knex, filter: AuditFilter): AsyncGenerator<string> {
  for await (const record of auditRecords(db, filter)) yield toJsonLine(record);
}

/** Writes the matching rows as JSON Lines to `out`, waiting when it is full; returns the count. */
export async function exportAuditEvents(
  db: Knex,
  filter: AuditFilter,
  out: Writable,
): Promise<number> {
  let count = 0;
  for await (const line of auditJsonLines(db, filter)) {
    count++;
    if (!out.write(line)) await once(out, 'drain');
  }
  return count;
}
