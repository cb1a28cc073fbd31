import type { AdapterFactory } from '../../adapters/index.ts';
import type { Stored } from '../../adapters/types.ts';
import type { User } from './store.ts';

type Standing = Pick<
  User,
  'disabled' | 'owner_locked_at' | 'sessions_valid_from' | 'ended_sessions'
>;

/** What of a session the rule looks at: when it signed in, and its uid. */
export type SessionFacts = { loginTs?: unknown; uid?: unknown };

const endedSessions = (user: Pick<User, 'ended_sessions'>): Record<string, number> =>
  typeof user.ended_sessions === 'string'
    ? (JSON.parse(user.ended_sessions) as Record<string, number>)
    : (user.ended_sessions ?? {});

/**
 * Whether a session may still act for this user: not disabled, not locked by its owner ("this
 * wasn't me"), signed in since the account was last signed out everywhere, and not ended on its
 * own (endedSession). Deleting sessions alone is not enough: a request in flight when they were
 * deleted writes its session back when it ends.
 */
export function sessionStands(user: Standing, session: SessionFacts | undefined): boolean {
  const loginTs = typeof session?.loginTs === 'number' ? session.loginTs : 0;
  const uid = typeof session?.uid === 'string' ? session.uid : undefined;
  return (
    !user.disabled &&
    !user.owner_locked_at &&
    loginTs >= Number(user.sessions_valid_from) &&
    (uid === undefined || !Object.hasOwn(endedSessions(user), uid))
  );
}

/** The account's stored sessions that still stand (a written-back ended one is not listed). */
export async function standingSessions(
  adapter: Pick<AdapterFactory, 'sessionsOf'>,
  user: Standing & Pick<User, 'id'>,
): Promise<Stored[]> {
  return (await adapter.sessionsOf(user.id)).filter((s) => sessionStands(user, s.payload));
}

/** What device cookies and the like are bound to: it changes when the account is signed out everywhere. */
export const signOutStamp = (user: Pick<User, 'sessions_valid_from'>) =>
  String(user.sessions_valid_from);
