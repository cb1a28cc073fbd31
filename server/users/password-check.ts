import type { Directory } from '../ldap/directory.ts';
import type { PasswordHasher } from '../security/passwords.ts';
import type { User, UserStore } from './store.ts';

export type PasswordCheck =
  | { ok: true; user: User }
  | {
      ok: false;
      reason: 'unknown_email' | 'wrong_password' | 'disabled' | 'locked' | 'directory_unavailable';
      /** The local account the login names, when there is one (for the audit and lockout). */
      user?: User | undefined;
      /** An outage proves nothing about the password: it counts toward no limit. */
      uncounted?: boolean;
    };

/**
 * Checks a login and password: against the local hash for local accounts, by a bind to the
 * directory for everyone else when one is configured (a directory user signs in with a
 * username or email). Every path costs one argon2 verification: a directory path verifies
 * against the decoy hash alongside its bind, so no answer's timing says which kind of account,
 * if any, the login names. Locks are not judged here: the sign-in guard does that.
 */
export function createPasswordCheck(users: UserStore, directory: Directory | undefined) {
  /** The account a login names, before any password is checked: by email, or the directory's. */
  async function accountOf(login: string): Promise<User | undefined> {
    const known = login ? await users.findByEmail(login) : undefined;
    return known || !directory ? known : directory.accountOf(login);
  }

  async function local(login: string, password: string, known: User | undefined) {
    const verified = login && password ? await users.verifyPassword(known, password) : undefined;
    if (verified) return { ok: true, user: verified } as const;
    const reason = !known ? 'unknown_email' : known.disabled ? 'disabled' : 'wrong_password';
    return { ok: false, reason, user: known } as const;
  }

  /** `account`: what accountOf found for this login, when the caller already asked. */
  async function checkPassword(
    login: string,
    password: string,
    account?: { user: User | undefined },
  ): Promise<PasswordCheck> {
    const known = account ? account.user : await accountOf(login);
    const localAccount = known !== undefined && known.source !== 'ldap';
    if (!directory || (localAccount && known.email_verified)) return local(login, password, known);

    // Nobody proved an unverified local account's mailbox: the directory is asked first, and
    // its user, signing in, replaces that account (server/ldap/linked-users.ts). Otherwise the
    // local password is checked as usual (one argon2 verification either way).
    if (localAccount) {
      const result = await directory.authenticate(login, password);
      return result.ok ? { ok: true, user: result.user as User } : local(login, password, known);
    }
    const [result] = await Promise.all([
      directory.authenticate(login, password),
      users.verifyPassword(undefined, password),
    ]);
    if (result.ok) return { ok: true, user: result.user as User };
    if (result.reason === 'unavailable')
      return { ok: false, reason: 'directory_unavailable', user: known, uncounted: true };
    const reason =
      result.reason === 'disabled' ? 'disabled' : known ? 'wrong_password' : 'unknown_email';
    return { ok: false, reason, user: known };
  }

  return Object.assign(checkPassword, { accountOf });
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
