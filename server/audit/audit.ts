import type { Context } from 'koa';
import type { Db } from '../db.ts';
import type { Logger } from '../log.ts';

export type AuditEvent = {
  type: string;
  outcome: 'success' | 'failure';
  actor: { type: 'user' | 'client' | 'admin' | 'system'; id?: string | undefined };
  /** Whom the event is about: a user id, a client id, a key id. */
  subject?: string | undefined;
  /** Small facts about the event (a reason, a client id). Never secrets: see SECRET_KEYS. */
  detail?: Record<string, unknown>;
};

export type RequestFacts = { ip?: string; userAgent?: string; requestId?: string };

// Anything named like a secret is dropped from the detail, whatever a caller passes.
const SECRET_KEYS = /pass|secret|token|code|otp|key/i;

/** Who asked: IP, user agent and request id of a request, for an audit row. */
export function requestFacts(ctx: Pick<Context, 'ip' | 'get' | 'state'>): RequestFacts {
  return {
    ip: ctx.ip,
    userAgent: ctx.get('user-agent').slice(0, 512),
    requestId: ctx.state?.requestId,
  };
}

/**
 * The one way to record a security-relevant event. Writing the row never fails the user's
 * request: a failure is logged instead.
 *
 * Rows are written by group commit: while one insert is in flight, the events that arrive wait
 * and then go in together, in one multi-row insert. Each caller still returns only once its own
 * row is committed, and a lone event is written at once.
 */
const MAX_BATCH = 500;

export function createAudit(db: Db, log: Logger) {
  type Pending = { row: Record<string, unknown>; written: () => void };
  const waiting: Pending[] = [];
  let writing = false;

  async function insert(rows: Record<string, unknown>[]): Promise<void> {
    try {
      await db('audit_events').insert(rows);
    } catch (err) {
      // One bad row (a data error: SQLSTATE class 22 or 23) must not cost the others theirs.
      // Any other failure (the database is down) would fail each row alike.
      const dataError = /^2[23]/.test(String((err as { code?: unknown }).code));
      if (rows.length > 1 && dataError) for (const row of rows) await insert([row]);
      else log.error({ err, types: rows.map((r) => r.type) }, 'audit events not recorded');
    }
  }

  async function drain(): Promise<void> {
    writing = true;
    try {
      while (waiting.length) {
        // Bounded: PostgreSQL takes at most 65,535 parameters in one statement.
        const batch = waiting.splice(0, MAX_BATCH);
        await insert(batch.map((p) => p.row));
        for (const p of batch) p.written();
      }
    } finally {
      writing = false;
    }
  }

  return function audit(event: AuditEvent, facts: RequestFacts = {}): Promise<void> {
    let row;
    try {
      const detail = Object.fromEntries(
        Object.entries(event.detail ?? {}).filter(([k]) => !SECRET_KEYS.test(k)),
      );
      row = {
        type: event.type,
        outcome: event.outcome,
        actor_type: event.actor.type,
        actor_id: event.actor.id ?? null,
        subject: event.subject ?? null,
        ip: facts.ip ?? null,
        user_agent: facts.userAgent ?? null,
        request_id: facts.requestId ?? null,
        detail: JSON.stringify(detail),
      };
    } catch (err) {
      log.error({ err, type: event.type }, 'audit event not recorded');
      return Promise.resolve();
    }
    return new Promise<void>((written) => {
      waiting.push({ row, written });
      if (!writing) void drain();
    });
  };
}

export type Audit = ReturnType<typeof createAudit>;

/** A successful event a user did to their own account. */
export function userEvent(
  type: string,
  userId: string,
  detail?: Record<string, unknown>,
): AuditEvent {
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
