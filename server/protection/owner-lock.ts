import type { Knex } from 'knex';
import type { User } from '../users/store.ts';
import { affected, type Db } from '../db.ts';

/**
 * The lock an owner sets by answering a security email with "this wasn't me". Unlike the
 * failed-sign-in lockout (lockout.ts) it has no end time and its own column: no sign-in, right
 * or wrong, and no passkey clears it, since whoever took the account may know the password or
 * have added a passkey. A completed password reset (which proves the mailbox and replaces the
 * password) or an admin's `users unlock` lifts it.
 */
export function isOwnerLocked(user: Pick<User, 'owner_locked_at'>): boolean {
  return Boolean(user.owner_locked_at);
}

export function createOwnerLock(db: Db) {
  return {
    /** Locks the account; locking it again keeps the time of the first lock. */
    async lock(userId: string): Promise<void> {
      await db('users')
        .where({ id: userId })
        .update({ owner_locked_at: db.raw('coalesce(owner_locked_at, now())') });
    },

    /** Lifts the lock; says whether there was one. */
    async release(userId: string, trx: Knex = db): Promise<boolean> {
      return (
        affected(
          await trx('users')
            .where({ id: userId })
            .whereNotNull('owner_locked_at')
            .update({ owner_locked_at: null }),
        ) > 0
      );
    },
  };
}

export type OwnerLock = ReturnType<typeof createOwnerLock>;
