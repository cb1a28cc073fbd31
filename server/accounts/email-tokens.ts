import { createHash, randomBytes } from 'node:crypto';
import { affected, type Db } from '../db.ts';

export type EmailTokenPurpose = 'verify_email' | 'reset_password';

export type Redeemed =
  | { ok: true; userId: string; data: Record<string, unknown> }
  | { ok: false; reason: 'invalid' | 'expired' | 'used' };

const hash = (token: string) => createHash('sha256').update(token).digest('base64url');

/**
 * Tokens for emailed links: 256 random bits, stored only as a SHA-256 hash (a database leak
 * gives no usable link), bound to one user and one purpose, expiring, single-use; redeeming one
 * invalidates every other unused token of the same user and purpose.
 */
export function createEmailTokens(db: Db) {
  return {
    async issue(
      userId: string,
      purpose: EmailTokenPurpose,
      ttlSeconds: number,
      data: Record<string, unknown> = {},
    ): Promise<string> {
      const token = randomBytes(32).toString('base64url');
      await db('email_tokens').insert({
        token_hash: hash(token),
        user_id: userId,
        purpose,
        data: JSON.stringify(data),
        expires_at: new Date(Date.now() + ttlSeconds * 1000),
      });
      return token;
    },

    /** Uses the token up. A token of another purpose, tampered or unknown, is just 'invalid'. */
    async redeem(token: string, purpose: EmailTokenPurpose): Promise<Redeemed> {
      if (typeof token !== 'string' || !/^[\w-]{43}$/.test(token))
        return { ok: false, reason: 'invalid' };
      return db.transaction(async (trx) => {
        const row = await trx('email_tokens')
          .where({ token_hash: hash(token), purpose })
          .forUpdate()
          .first();
        if (!row) return { ok: false, reason: 'invalid' } as const;
        if (row.used_at) return { ok: false, reason: 'used' } as const;
        if (new Date(row.expires_at) <= new Date())
          return { ok: false, reason: 'expired' } as const;
        await trx('email_tokens')
          .where({ user_id: row.user_id, purpose })
          .whereNull('used_at')
          .update({ used_at: trx.fn.now() });
        const data = typeof row.data === 'string' ? JSON.parse(row.data) : row.data;
        return { ok: true, userId: row.user_id as string, data };
      });
    },

    /** Seconds since the newest token of this purpose was sent to the user (undefined: never). */
    async secondsSinceLast(
      userId: string,
      purpose: EmailTokenPurpose,
    ): Promise<number | undefined> {
      const row = await db('email_tokens')
        .where({ user_id: userId, purpose })
        .max({ at: 'created_at' })
        .first();
      return row?.at ? (Date.now() - new Date(row.at).getTime()) / 1000 : undefined;
    },

    /** Deletes tokens that expired more than a day ago (kept a while so a late click says "expired"). */
    async sweep(): Promise<number> {
      return affected(
        await db('email_tokens')
          .where('expires_at', '<', new Date(Date.now() - 24 * 3600 * 1000))
          .delete(),
      );
    },
  };
}

export type EmailTokens = ReturnType<typeof createEmailTokens>;
