import type { Directory } from '../ldap/directory.ts';
import { isLocked } from '../protection/lockout.ts';
import type { PasswordHasher } from '../security/passwords.ts';
import type { User, UserStore } from './users.ts';

export type PasswordCheck =
  | { ok: true; user: User }
  | {
      ok: false;
      reason: 'unknown_email' | 'wrong_password' | 'disabled' | 'locked' | 'directory_unavailable';
      /** The local account the login names, when there is one (for the audit and lockout). */
      user?: User | undefined;
    };

/**
 * Checks a login and password: against the local hash for local accounts, by a bind to the
 * directory for everyone else when one is configured (a directory user signs in with a
 * username or email). Every wrong answer costs the same work as a right one.
 */
export function createPasswordCheck(users: UserStore, directory: Directory | undefined) {
  async function local(login: string, password: string, known: User | undefined) {
    const verified = login && password ? await users.verifyPassword(known, password) : undefined;
    if (verified)
      return isLocked(verified)
        ? ({ ok: false, reason: 'locked', user: verified } as const)
        : ({ ok: true, user: verified } as const);
    const reason = !known
      ? 'unknown_email'
      : known.disabled
        ? 'disabled'
        : isLocked(known)
          ? 'locked'
          : 'wrong_password';
    return { ok: false, reason, user: known } as const;
  }

  return async function checkPassword(login: string, password: string): Promise<PasswordCheck> {
    const known = login ? await users.findByEmail(login) : undefined;
    const localAccount = known !== undefined && known.source !== 'ldap';
    if (!directory || (localAccount && known.email_verified)) return local(login, password, known);

    // Nobody proved an unverified local account's mailbox: the directory is asked first, and
    // its user, signing in, replaces that account (server/ldap/linked-users.ts).
    const result = await directory.authenticate(login, password);
    if (!result.ok && localAccount) return local(login, password, known);
    if (result.ok) {
      const user = result.user as User;
      return isLocked(user) ? { ok: false, reason: 'locked', user } : { ok: true, user };
    }
    const reason =
      result.reason === 'unavailable'
        ? 'directory_unavailable'
        : result.reason === 'disabled'
          ? 'disabled'
          : known
            ? 'wrong_password'
            : 'unknown_email';
    return { ok: false, reason, user: known };
  };
}

export type CheckPassword = ReturnType<typeof createPasswordCheck>;

/** The signed-in user's current password, checked where it lives (the directory's users' there). */
export async function isCurrentPassword(
  deps: { passwords: PasswordHasher; checkPassword: CheckPassword },
  user: User,
  password: string,
): Promise<boolean> {
  if (user.source !== 'ldap') return (await deps.passwords.verify(user.password_hash, password)).ok;
  const checked = await deps.checkPassword(user.email, password);
  return checked.ok && checked.user.id === user.id;
}
