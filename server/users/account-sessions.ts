import type { AdapterFactory } from '../../adapters/index.ts';
import type { Stored } from '../../adapters/types.ts';
import type { Audit, AuditEvent, RequestFacts } from '../audit/audit.ts';
import type { Db } from '../db.ts';
import type { Logger } from '../log.ts';
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

type Deps = {
  db: Db;
  log: Logger;
  adapter: AdapterFactory;
  signOut: AccountSignOut;
  audit: Audit;
  csrf: Csrf;
};
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
export function accountSessions({ db, log, adapter, signOut, audit, csrf }: Deps) {
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

  /** The grants of `ended` that no session in `staying` uses: the apps used only in those. */
  const usedOnlyIn = (ended: Stored[], staying: Stored[]): string[] => {
    const used = new Set(staying.flatMap((s) => grantsOfSession(s.payload)));
    return [...new Set(ended.flatMap((s) => grantsOfSession(s.payload)))].filter(
      (id) => !used.has(id),
    );
  };

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
     * undefined when no live session of the account has that name (it ended already). The end,
     * the grants and the audit row commit together; the session is deleted after.
     */
    async end(
      accountId: string,
      name: { handle: string } | { uid: string },
      actor: Actor,
      facts: RequestFacts,
    ): Promise<{ grants: number } | undefined> {
      const named = (s: Stored) =>
        'handle' in name ? handleOf(s.id) === name.handle : s.payload.uid === name.uid;
      const sessions = await adapter.sessionsOf(accountId);
      const session = sessions.find(named);
      if (!session) return undefined;
      const grants = usedOnlyIn(
        [session],
        sessions.filter(({ id }) => id !== session.id),
      );
      const device = deviceName(activityOf(session.payload)?.userAgent ?? '');
      const signedOut = await db.transaction(async (trx) => {
        const out = await signOut.endSessionsWithin(trx, accountId, { only: session }, grants);
        const detail = { device, grants: out.grants.length };
        await audit.within(trx, ended('session_ended', accountId, actor, detail), facts);
        return out;
      });
      await signOut.cleanUp(signedOut);
      return { grants: signedOut.grants.length };
    },

    /**
     * Ends every session of the account but `currentId` (the owner's own; none for an admin),
     * through the account-wide sign-out (a request of an ended session in flight cannot write
     * it back: session-rule.ts), and the grants of the apps used only in them, which commit
     * together with the audit row; the asking session is then saved as signed in as of the
     * sign-out. Nothing is done when the asking session no longer stands (ended meanwhile).
     */
    async endOthers(
      accountId: string,
      currentId: string | undefined,
      actor: Actor,
      facts: RequestFacts,
    ): Promise<{ sessions: number; grants: number }> {
      const sessions = await adapter.sessionsOf(accountId);
      const others = sessions.filter(({ id }) => id !== currentId);
      const grants = usedOnlyIn(
        others,
        sessions.filter(({ id }) => id === currentId),
      );
      const current = sessions.find(({ id }) => id === currentId);
      const validFrom = Math.floor(Date.now() / 1000);
      const signedOut = await db.transaction(async (trx) => {
        // The asking session stays only if it still stands (it may have been ended meanwhile).
        if (currentId && !(await signOut.standsWithin(trx, accountId, current))) return undefined;
        const out = await signOut.endSessionsWithin(
          trx,
          accountId,
          { keepSession: currentId, validFrom },
          grants,
        );
        const type = currentId ? 'other_sessions_ended' : 'sessions_ended';
        const detail = { sessions: others.length, grants: out.grants.length };
        await audit.within(trx, ended(type, accountId, actor, detail), facts);
        return out;
      });
      if (!signedOut) return { sessions: 0, grants: 0 };
      // Signed in as of the sign-out: the asking browser stays in. Should that write fail, it
      // is signed out too, with the others (nothing is left half-done for them).
      if (currentId)
        await signOut.keepSession(accountId, currentId, validFrom).catch((err: Error) => {
          log.warn({ error: err.message }, 'the asking session was signed out with the others');
        });
      await signOut.cleanUp(signedOut);
      return { sessions: others.length, grants: signedOut.grants.length };
    },
  };
}

export type AccountSessions = ReturnType<typeof accountSessions>;
