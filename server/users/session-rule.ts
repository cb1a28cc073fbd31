import type { User } from './store.ts';

type Standing = Pick<User, 'disabled' | 'owner_locked_at' | 'sessions_valid_from'>;

/**
 * Whether a session that signed in at `loginTs` (epoch seconds) may still act for this user: not
 * disabled, not locked by its owner ("this wasn't me"), and signed in since the account was last
 * signed out everywhere. Deleting sessions alone is not enough: a request in flight when they
 * were deleted writes its session back when it ends.
 */
export function sessionStands(user: Standing, loginTs: number | undefined): boolean {
  return (
    !user.disabled && !user.owner_locked_at && (loginTs ?? 0) >= Number(user.sessions_valid_from)
  );
}

/** What device cookies and the like are bound to: it changes when the account is signed out everywhere. */
export const signOutStamp = (user: Pick<User, 'sessions_valid_from'>) =>
  String(user.sessions_valid_from);
