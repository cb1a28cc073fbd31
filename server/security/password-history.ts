import type { Knex } from 'knex';
import type { Db } from '../db.ts';
import type { PasswordHasher } from './passwords.ts';

/**
 * Recent passwords of each user, kept as their argon2 hashes: the current one in users and the
 * `size` before it in password_history. `size` 0 turns the reuse check off, the current
 * password included, and keeps no history.
 */
export function createPasswordHistory(
  db: Db,
  passwords: Pick<PasswordHasher, 'verify'>,
  size: number,
) {
  const newestFirst = [
    { column: 'created_at', order: 'desc' },
    { column: 'id', order: 'desc' },
  ];

  return {
    /**
     * Whether the password is the user's current one or one of the last `size` before it. Each
     * hash is verified in turn, without stopping at a match, so the time taken does not say which
     * one matched; one at a time, so a change holds one argon2 working memory, not `size + 1`.
     */
    async isReused(userId: string, password: string): Promise<boolean> {
      if (size === 0) return false;
      const user = await db('users').where({ id: userId }).first('password_hash');
      const previous: string[] = await db('password_history')
        .where({ user_id: userId })
        .orderBy(newestFirst)
        .limit(size)
        .pluck('password_hash');
      let reused = false;
      for (const hash of [user?.password_hash, ...previous]) {
        if (hash && (await passwords.verify(hash, password)).ok) reused = true;
      }
      return reused;
    },

    /**
     * Keeps the hash being replaced (call it with the old hash when the password changes, never
     * on a rehash of the same password) and forgets all but the newest `size`; in `within`, the
     * transaction of the change, when given.
     */
    async remember(
      userId: string,
      oldHash: string | null | undefined,
      within?: Knex.Transaction,
    ): Promise<void> {
      // In the transaction of the change, when given: the history changes with the password.
      await (within ?? db).transaction(async (trx) => {
        if (oldHash && size > 0)
          await trx('password_history').insert({ user_id: userId, password_hash: oldHash });
        const kept = trx('password_history')
          .select('id')
          .where({ user_id: userId })
          .orderBy(newestFirst)
          .limit(size);
        await trx('password_history').where({ user_id: userId }).whereNotIn('id', kept).delete();
      });
    },
  };
}

export type PasswordHistory = ReturnType<typeof createPasswordHistory>;
