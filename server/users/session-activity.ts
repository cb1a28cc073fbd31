import type { Context } from 'koa';
import type { AdapterPayload, default as Provider } from 'oidc-provider';

/** What a session remembers of the browser holding it, for the account's sessions page. */
export type SessionActivity = {
  /** When the browser last used the session at the authorization server (epoch seconds). */
  at: number;
  ip: string;
  userAgent: string;
};

/**
 * The session's own field for it. oidc-provider keeps in a Session only the fields its model
 * lists (IN_PAYLOAD); its author's advice for data of one's own is to add a field of a name it
 * will not use (panva/node-oidc-provider#708).
 */
const FIELD = 'latchkeyActivity';
const USER_AGENT_MAX = 512;

/** Lets the provider's sessions keep their activity: call once, before any session is read. */
export function keepSessionActivity(provider: Provider): void {
  const fields = (provider.Session as unknown as { IN_PAYLOAD: string[] }).IN_PAYLOAD;
  Object.defineProperty(provider.Session, 'IN_PAYLOAD', { value: [...fields, FIELD] });
}

/**
 * Notes the browser on a signed-in session the provider is about to save, as every request of
 * the provider that reads a session does (a sign-in, an app's authorization, a sign-out).
 */
export function noteSessionActivity(ctx: Context, session: { accountId?: string | undefined }) {
  if (!session.accountId) return;
  const activity: SessionActivity = {
    at: Math.floor(Date.now() / 1000),
    ip: ctx.ip,
    userAgent: ctx.get('user-agent').slice(0, USER_AGENT_MAX),
  };
  Object.assign(session, { [FIELD]: activity });
}

/**
 * Browsing the account pages counts as activity too, but those pages read the session without
 * the provider saving it: they note it themselves, at most this often, not with a write each.
 */
export const PAGE_ACTIVITY_INTERVAL_SECONDS = 5 * 60;

/** Whether a session's activity is old enough (or missing) to note again on a page visit. */
export function activityDue(session: object): boolean {
  const last = activityOf(session as AdapterPayload)?.at ?? 0;
  return Math.floor(Date.now() / 1000) - last >= PAGE_ACTIVITY_INTERVAL_SECONDS;
}

/** The activity a stored session holds; none for one saved before sessions kept it. */
export function activityOf(payload: AdapterPayload): SessionActivity | undefined {
  const activity = (payload as Record<string, unknown>)[FIELD] as SessionActivity | undefined;
  return typeof activity?.at === 'number' ? activity : undefined;
}

type Authorizations = { authorizations?: Record<string, { grantId?: string | undefined }> };

/** The grants of the apps a session (loaded or stored) signed in to. */
export function grantsOfSession(session: Authorizations): string[] {
  return Object.values(session.authorizations ?? {})
    .map((authorization) => authorization.grantId)
    .filter((id): id is string => !!id);
}
