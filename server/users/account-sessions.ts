import type { AdapterFactory } from '../../adapters/index.ts';
import type { Stored } from '../../adapters/types.ts';
import type { Audit, AuditEvent, RequestFacts } from '../audit/audit.ts';
import { csrfBindings } from '../http/csrf-bindings.ts';
import type { Csrf } from '../security/csrf.ts';
import { deviceName } from './devices.ts';
import { activityOf, grantsOfSession } from './session-activity.ts';
import { standingSessions } from './session-rule.ts';
import type { AccountSignOut } from './sign-out.ts';
import type { User } from './store.ts';

/** One browser session of an account, as the account pages show it. */
export type SessionView = {
  /** Names the session in forms and URLs: its id is its cookie's value and never shown. */
  handle: string;
  /** The session's own random uid, which names it to admins (the admin API). */
  uid: string | undefined;
  /** "Firefox on Linux": from the user agent, as the new-device notice names it. */
  device: string;
  ip: string | undefined;
  /** Epoch seconds. */
  signedInAt: number | undefined;
  lastActiveAt: number | undefined;
  /** The session of the browser asking. */
  current: boolean;
};

type Deps = { adapter: AdapterFactory; signOut: AccountSignOut; audit: Audit; csrf: Csrf };
type Actor = AuditEvent['actor'];

/** Ending sessions: the account's owner did it, or an admin (`actor`). */
const ended = (type: string, accountId: string, actor: Actor, detail: Record<string, unknown>) => ({
  type,
  outcome: 'success' as const,
  actor,
  subject: accountId,
  detail,
});

/**
 * The browser sessions of an account: listed for its owner, ended one at a time or all but the
 * owner's own. Ending a session revokes the grants of the apps used only in it (each session
 * signs in to an app with a grant of its own: loadExistingGrant in provider.ts), and so their
 * refresh tokens; an app the user also uses in a session that stays keeps working.
 */
export function accountSessions({ adapter, signOut, audit, csrf }: Deps) {
  const handleOf = (sessionId: string) => csrf.token(csrfBindings.sessionHandle(sessionId));

  function view({ id, payload }: Stored, currentId: string): SessionView {
    const activity = activityOf(payload);
    return {
      handle: handleOf(id),
      uid: typeof payload.uid === 'string' ? payload.uid : undefined,
      device: deviceName(activity?.userAgent ?? ''),
      ip: activity?.ip,
      signedInAt: typeof payload.loginTs === 'number' ? payload.loginTs : undefined,
      lastActiveAt: activity?.at,
      current: id === currentId,
    };
  }

  /** Revokes the grants of `ended` that no session of the account still uses; how many. */
  async function revokeUnused(accountId: string, ended: Stored[]): Promise<number> {
    const used = new Set(
      (await adapter.sessionsOf(accountId)).flatMap((s) => grantsOfSession(s.payload)),
    );
    const unused = new Set(
      ended.flatMap((s) => grantsOfSession(s.payload)).filter((id) => !used.has(id)),
    );
    for (const grantId of unused) await adapter.revokeGrant(grantId);
    return unused.size;
  }

  return {
    /** This browser's session first, then the others, most recently active first. */
    async list(user: User, currentId: string): Promise<SessionView[]> {
      const sessions = (await standingSessions(adapter, user)).map((s) => view(s, currentId));
      return sessions.sort(
        (a, b) =>
          Number(b.current) - Number(a.current) || (b.lastActiveAt ?? 0) - (a.lastActiveAt ?? 0),
      );
    },

    /**
     * Ends the account's session named by `handle` (its owner's pages) or by its `uid` (an
     * admin), and the grants of the apps used only in it; how many grants those were, or
     * undefined when no live session of the account has that name (it ended already).
     */
    async end(
      accountId: string,
      name: { handle: string } | { uid: string },
      actor: Actor,
      facts: RequestFacts,
    ): Promise<{ grants: number } | undefined> {
      const named = (s: Stored) =>
        'handle' in name ? handleOf(s.id) === name.handle : s.payload.uid === name.uid;
      const session = (await adapter.sessionsOf(accountId)).find(named);
      if (!session || !(await signOut.endSession(accountId, session))) return undefined;
      const grants = await revokeUnused(accountId, [session]);
      const device = deviceName(activityOf(session.payload)?.userAgent ?? '');
      await audit(ended('session_ended', accountId, actor, { device, grants }), facts);
      return { grants };
    },

    /**
     * Ends every session of the account but `currentId` (the owner's own; none for an admin),
     * through the account-wide sign-out (a request of an ended session in flight cannot write
     * it back: session-rule.ts), and the grants of the apps used only in them.
     */
    async endOthers(
      accountId: string,
      currentId: string | undefined,
      actor: Actor,
      facts: RequestFacts,
    ): Promise<{ sessions: number; grants: number }> {
      const others = (await adapter.sessionsOf(accountId)).filter(({ id }) => id !== currentId);
      const { ended: sessions } = await signOut.endSessions(accountId, currentId);
      const grants = await revokeUnused(accountId, others);
      const type = currentId ? 'other_sessions_ended' : 'sessions_ended';
      await audit(ended(type, accountId, actor, { sessions, grants }), facts);
      return { sessions, grants };
    },
  };
}

export type AccountSessions = ReturnType<typeof accountSessions>;
