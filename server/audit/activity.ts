import type { Knex } from 'knex';

/** One audit row about a user, as their security activity page shows it. */
export type ActivityRow = {
  id: number;
  at: Date;
  type: string;
  outcome: string;
  actorType: string;
  ip: string | null;
  userAgent: string | null;
  detail: Record<string, unknown>;
  count: number;
  lastAt: Date | null;
};

/**
 * Protocol events a user would not recognise as something they did, and which come by the
 * hundred (every refresh of every app): the apps page shows them as each app's last use.
 */
const NOT_ACTIVITY = ['token_issued', 'token_refreshed'];

// A cursor names the last row shown: its `at` as PostgreSQL's microsecond text (a Date would
// round it) and its id. Anything else is no cursor at all.
const CURSOR = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z)~(\d{1,18})$/;
const iso = (column: string) =>
  `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

/**
 * A page of the events about `userId` (its `subject`), newest first: `limit` rows after the one
 * `before` names, and the cursor of the next page when there is one. Only ever that user's
 * rows, whatever the cursor says: it is a position, not a filter.
 */
export async function activityOf(
  db: Knex,
  userId: string,
  { before, limit }: { before?: string | undefined; limit: number },
): Promise<{ rows: ActivityRow[]; next: string | undefined }> {
  const query = db('audit_events')
    .select(
      db.raw(`${iso('at')} AS at_iso`),
      'id',
      'at',
      'type',
      'outcome',
      'actor_type',
      'ip',
      'user_agent',
      'detail',
      'count',
      'last_at',
    )
    .where('subject', userId)
    .whereNotIn('type', NOT_ACTIVITY)
    .orderBy([
      { column: 'at', order: 'desc' },
      { column: 'id', order: 'desc' },
    ])
    .limit(limit + 1);
  const cursor = CURSOR.exec(before ?? '');
  // Shaped like a time is not yet a time (month 13, 30 February): such a cursor is ignored.
  if (cursor && isRealTime(cursor[1]!))
    query.whereRaw('(at, id) < (?::timestamptz, ?)', [cursor[1]!, Number(cursor[2])]);
  const found: Row[] = await query;
  const rows = found.slice(0, limit);
  const last = rows.at(-1);
  return {
    rows: rows.map(toActivity),
    next: found.length > limit && last ? `${last.at_iso}~${last.id}` : undefined,
  };
}

/**
 * When the user's account was first and last used by each client, as far as the audit trail
 * (within its retention) tells: first its consent or tokens, last its tokens (a sign-in or a
 * refresh).
 */
export async function clientUseOf(
  db: Knex,
  userId: string,
): Promise<Map<string, { first: Date; last: Date | undefined }>> {
  const rows: { client: string; first: Date; last: Date | null }[] = await db('audit_events')
    .select(
      db.raw(`detail->>'client' AS client`),
      db.raw('min(at) AS first'),
      db.raw(`max(at) FILTER (WHERE type <> 'consent_granted') AS last`),
    )
    .where('subject', userId)
    .whereIn('type', ['consent_granted', ...NOT_ACTIVITY])
    .whereRaw(`detail->>'client' IS NOT NULL`)
    .groupByRaw(`detail->>'client'`);
  return new Map(
    rows.map((r) => [
      r.client,
      { first: new Date(r.first), last: r.last ? new Date(r.last) : undefined },
    ]),
  );
}

type Row = {
  at_iso: string;
  id: number | string;
  at: Date;
  type: string;
  outcome: string;
  actor_type: string;
  ip: string | null;
  user_agent: string | null;
  detail: Record<string, unknown> | string;
  count: number | string;
  last_at: Date | null;
};

// pg gives a bigint as a string and PGlite as a number; jsonb may come back as text.
function toActivity(row: Row): ActivityRow {
  return {
    id: Number(row.id),
    at: new Date(row.at),
    type: row.type,
    outcome: row.outcome,
    actorType: row.actor_type,
    ip: row.ip,
    userAgent: row.user_agent,
    detail: typeof row.detail === 'string' ? JSON.parse(row.detail) : row.detail,
    count: Number(row.count),
    lastAt: row.last_at ? new Date(row.last_at) : null,
  };
}

/** Whether an ISO 8601 UTC time names a real instant (it reads back unchanged). */
function isRealTime(iso: string): boolean {
  const ms = Date.parse(iso);
  // Before 1970 no row was written; and PostgreSQL refuses some times JavaScript takes (year 0).
  return ms >= 0 && new Date(ms).toISOString().slice(0, 19) === iso.slice(0, 19);
}
