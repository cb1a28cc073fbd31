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
 */
export function createAudit(db: Db, log: Logger) {
  return async function audit(event: AuditEvent, facts: RequestFacts = {}): Promise<void> {
    const detail = Object.fromEntries(
      Object.entries(event.detail ?? {}).filter(([k]) => !SECRET_KEYS.test(k)),
    );
    try {
      await db('audit_events').insert({
        type: event.type,
        outcome: event.outcome,
        actor_type: event.actor.type,
        actor_id: event.actor.id ?? null,
        subject: event.subject ?? null,
        ip: facts.ip ?? null,
        user_agent: facts.userAgent ?? null,
        request_id: facts.requestId ?? null,
        detail: JSON.stringify(detail),
      });
    } catch (err) {
      log.error({ err, type: event.type }, 'audit event not recorded');
    }
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
