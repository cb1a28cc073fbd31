import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
import type { Context } from 'koa';
import type { Db } from '../db.ts';
import type { Logger } from '../log.ts';
import { NO_METRICS } from '../metrics/metrics.ts';

export type AuditEvent = {
  type: string;
  outcome: 'success' | 'failure';
  actor: { type: 'user' | 'client' | 'admin' | 'system'; id?: string | undefined };
  /** Whom the event is about: a user id, a client id, a key id. */
  subject?: string | undefined;
  /** Small facts about the event (a reason, a client id). Never secrets: see SECRET_KEYS. */
  detail?: Record<string, unknown>;
};

/** An event of something done: what a change records in its own transaction (`audit.within`). */
export type SuccessEvent = AuditEvent & { outcome: 'success' };

export type RequestFacts = { ip?: string; userAgent?: string; requestId?: string };

// Anything named like a secret is dropped from the detail, whatever a caller passes.
const SECRET_KEYS = /pass|secret|token|code|otp|key/i;
const USER_AGENT_MAX = 512;
// Detail fields whose value the sender picks freely (an unknown email): were they part of what
// alike refusals share, a sender could write one row per made-up value. The first one is kept.
const SENDER_CHOSEN = new Set(['email']);

/** Who asked: IP, user agent and request id of a request, for an audit row. */
export function requestFacts(ctx: Pick<Context, 'ip' | 'get' | 'state'>): RequestFacts {
  return {
    ip: ctx.ip,
    userAgent: ctx.get('user-agent').slice(0, USER_AGENT_MAX),
    requestId: ctx.state?.requestId,
  };
}

type Row = Record<string, unknown> & { aggregate_key?: string; count: number };

let lastMs = 0;
let sameMs = 0;
/**
 * Now, as an ISO time with microseconds: events told of within one millisecond get increasing
 * microseconds, so that the trail (ordered by time) keeps the order this process saw them in.
 */
function eventTime(): string {
  const ms = Date.now();
  sameMs = ms === lastMs ? Math.min(sameMs + 1, 999) : 0;
  lastMs = ms;
  return new Date(ms).toISOString().replace('Z', `${String(sameMs).padStart(3, '0')}Z`);
}

/**
 * What alike refusals within one window share: their kind, actor, subject, source IP and the
 * detail (but what the sender chose). Hashed: the index holds 43 characters a row.
 */
function aggregateKey(row: Row, detail: Record<string, unknown>, windowSeconds: number): string {
  const window = Math.floor(Date.now() / (windowSeconds * 1000));
  const facts = Object.entries(detail)
    .filter(([k]) => !SENDER_CHOSEN.has(k))
    .sort(([a], [b]) => (a < b ? -1 : 1));
  const { type, actor_type, actor_id, subject, ip } = row;
  const shared = [windowSeconds, window, type, actor_type, actor_id, subject, ip, facts];
  return createHash('sha256').update(JSON.stringify(shared)).digest('base64url');
}

/**
 * One row per aggregate key (the first, its count the sum), after the plain rows. The counted
 * rows go in key order, the same in every process, so two inserts locking the same keys cannot
 * deadlock; and PostgreSQL lets one statement update a row only once.
 */
function combine(rows: Row[]): Row[] {
  const plain: Row[] = [];
  const counted = new Map<string, Row>();
  for (const row of rows) {
    const key = row.aggregate_key;
    const first = key && counted.get(key);
    if (!key) plain.push(row);
    else if (first) first.count += row.count;
    else counted.set(key, { ...row });
  }
  const keys = [...counted.keys()].sort();
  return [...plain, ...keys.map((key) => counted.get(key)!)];
}

/**
 * The one way to record a security-relevant event. The promise resolves once the row is
 * committed, and rejects (the failure logged) when it could not be, PostgreSQL being down or
 * not answering in time: a caller awaits it before it reports its action done, so that no
 * sign-in succeeds with its record missing; the request answers 503, try again. Only a row
 * PostgreSQL refuses for its data (SQLSTATE class 22 or 23, which trying again would not cure)
 * is logged and given up. A change that must not stand without its record (a password, a
 * consent) writes the row in its own transaction instead, with `audit.within`.
 *
 * Rows are written by group commit: while one insert is in flight, the events that arrive wait
 * and then go in together, in one multi-row insert. Each caller still returns only once its own
 * row is committed, and a lone event is written at once.
 *
 * Refusals (failure events) alike in kind, source and account within `failureWindowSeconds` are
 * counted, not each stored: the first is written in full, and the rest add to its `count` and
 * move its `last_at`, in the same atomic upsert. A sender repeating a refused request then adds
 * no rows, only counts. Successes and every other event are one row each. Those two columns of
 * a counted row are the only thing ever changed in the trail.
 */
const MAX_BATCH = 500;
// Events told of after their request was answered (`audit.soon`) wait this long for others to go
// in with them: one insert for the many a busy server has, rather than one each.
const LINGER_MS = 100;

export function createAudit(
  db: Db,
  log: Logger,
  { failureWindowSeconds = 0, metrics = NO_METRICS } = {},
) {
  type Pending = { row: Row; written: () => void; failed: (err: unknown) => void };
  const waiting: Pending[] = [];
  let draining: Promise<void> | undefined;
  let lingering: NodeJS.Timeout | undefined;

  /** Rejects when the rows are not committed, but for a lone row refused for its data. */
  async function insert(rows: Row[]): Promise<void> {
    try {
      const query = db('audit_events').insert(rows);
      await (rows.some((r) => r.aggregate_key)
        ? query.onConflict(db.raw('(aggregate_key) WHERE aggregate_key IS NOT NULL')).merge({
            count: db.raw('audit_events.count + excluded.count'),
            last_at: db.raw('excluded.last_at'),
          })
        : query);
    } catch (err) {
      // One bad row (a data error: SQLSTATE class 22 or 23) must not cost the others theirs.
      // Any other failure (the database is down) would fail each row alike.
      const dataError = /^2[23]/.test(String((err as { code?: unknown }).code));
      if (rows.length > 1 && dataError) {
        for (const row of rows) await insert([row]);
        return;
      }
      log.error({ err, types: rows.map((r) => r.type) }, 'audit events not recorded');
      metrics.auditWriteFailures.inc({}, rows.length);
      if (!dataError) throw err;
    }
  }

  /** Writes what waits, joining the write under way if there is one. */
  function drain(): Promise<void> {
    clearTimeout(lingering);
    lingering = undefined;
    if (!waiting.length) return draining ?? Promise.resolve();
    return (draining ??= drainAll());
  }

  async function drainAll(): Promise<void> {
    // Done the moment the queue is seen empty: an event pushed later starts the next drain.
    try {
      while (waiting.length) {
        // Bounded: PostgreSQL takes at most 65,535 parameters in one statement.
        const batch = waiting.splice(0, MAX_BATCH);
        metrics.auditBatchSize.observe({}, batch.length);
        try {
          await insert(combine(batch.map((p) => p.row)));
          for (const p of batch) p.written();
        } catch (err) {
          for (const p of batch) p.failed(err);
        }
      }
    } finally {
      draining = undefined;
    }
  }

  /** The row of an event; undefined (logged) for an event that cannot be one. */
  function rowOf(event: AuditEvent, facts: RequestFacts): Row | undefined {
    try {
      const detail = Object.fromEntries(
        Object.entries(event.detail ?? {}).filter(([k]) => !SECRET_KEYS.test(k)),
      );
      const row: Row = {
        type: event.type,
        outcome: event.outcome,
        actor_type: event.actor.type,
        actor_id: event.actor.id ?? null,
        subject: event.subject ?? null,
        ip: facts.ip ?? null,
        user_agent: facts.userAgent?.slice(0, USER_AGENT_MAX) ?? null,
        request_id: facts.requestId ?? null,
        detail: JSON.stringify(detail),
        count: 1,
        // Every row's time is when its event was told of, by this clock: one written a little
        // later (`soon`) still comes before a change recorded after it.
        at: eventTime(),
      };
      if (event.outcome === 'failure' && failureWindowSeconds > 0) {
        row.aggregate_key = aggregateKey(row, detail, failureWindowSeconds);
        row.last_at = row.at;
      }
      return row;
    } catch (err) {
      log.error({ err, type: event.type }, 'audit event not recorded');
      return undefined;
    }
  }

  function audit(event: AuditEvent, facts: RequestFacts = {}): Promise<void> {
    const row = rowOf(event, facts);
    if (!row) return Promise.resolve();
    return new Promise<void>((written, failed) => {
      waiting.push({ row, written, failed });
      void drain();
    });
  }

  return Object.assign(audit, {
    /**
     * Records an event that nothing waits for: one told of once its request was answered. It
     * goes in with the next insert, at the latest LINGER_MS on; a failure is logged by insert().
     */
    soon(event: AuditEvent, facts: RequestFacts = {}): void {
      const row = rowOf(event, facts);
      if (!row) return;
      waiting.push({ row, written: () => undefined, failed: () => undefined });
      lingering ??= setTimeout(() => void drain(), LINGER_MS).unref();
    },
    /** Writes what waits (at a stop); never throws. */
    async flush(): Promise<void> {
      while (waiting.length || draining) await drain();
    },
    /**
     * Writes the event's row in `trx`, the transaction of the change it records: the change and
     * its record commit together or not at all. Any failure rejects (and so rolls the change
     * back), a refused row too. For what succeeded: refusals are counted (see above), not this.
     */
    async within(trx: Knex.Transaction, event: SuccessEvent, facts: RequestFacts = {}) {
      const row = rowOf(event, facts);
      if (!row) throw new Error(`audit event ${event.type} cannot be recorded`);
      await trx('audit_events').insert(row);
    },
  });
}

export type Audit = ReturnType<typeof createAudit>;

/** A successful event a user did to their own account. */
export function userEvent(
  type: string,
  userId: string,
  detail?: Record<string, unknown>,
): SuccessEvent {
  return {
    type,
    outcome: 'success',
    actor: { type: 'user', id: userId },
    subject: userId,
    ...(detail && { detail }),
  };
}

/** A sign-in attempt, about the user when one is known. */
export function signInEvent(
  outcome: AuditEvent['outcome'],
  userId: string | undefined,
  detail: Record<string, unknown>,
): AuditEvent {
  return { type: 'sign_in', outcome, actor: { type: 'user', id: userId }, subject: userId, detail };
}
