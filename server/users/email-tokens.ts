import { createHash, randomBytes } from 'node:crypto';
import type { Knex } from 'knex';
import { affected, type Db } from '../db.ts';

export type EmailTokenPurpose =
  | 'verify_email'
  | 'reset_password'
  | 'change_email'
  | 'unlock_account'
  | 'secure_account'
  | 'restore_email';

export type Redeemed =
  | { ok: true; userId: string; data: Record<string, unknown> }
  | { ok: false; reason: 'invalid' | 'expired' | 'used' };

const INVALID = { ok: false, reason: 'invalid' } as const;
const wellFormed = (token: unknown): token is string =>
  typeof token === 'string' && /^[\w-]{43}$/.test(token);
const parseData = (data: unknown) =>
  (typeof data === 'string' ? JSON.parse(data) : data) as Record<string, unknown>;

type Row = {
  user_id: string;
  data: unknown;
  expires_at: Date;
  used_at: Date | null;
  created_at: Date;
};

function judge(row: Row | undefined): Redeemed {
  if (!row) return INVALID;
  if (row.used_at) return { ok: false, reason: 'used' };
  if (new Date(row.expires_at) <= new Date()) return { ok: false, reason: 'expired' };
  return { ok: true, userId: row.user_id, data: parseData(row.data) };
}

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

    /** Says what redeeming would say, without using the token up (mail scanners open links too). */
    async peek(token: string, purpose: EmailTokenPurpose): Promise<Redeemed> {
      if (!wellFormed(token)) return INVALID;
      return judge(
        await db('email_tokens')
          .where({ token_hash: hash(token), purpose })
          .first(),
      );
    },

    /**
     * Uses the token up. A token of another purpose, tampered or unknown, is just 'invalid'.
     * With `keepEarlier`, tokens of the purpose issued before this one stay usable (only it and
     * later ones are used up). `within`: the transaction of what the link does, when given.
     */
    async redeem(
      token: string,
      purpose: EmailTokenPurpose,
      { keepEarlier = false, within }: { keepEarlier?: boolean; within?: Knex.Transaction } = {},
    ): Promise<Redeemed> {
      if (!wellFormed(token)) return INVALID;
      return (within ?? db).transaction(async (trx) => {
        const row: Row | undefined = await trx('email_tokens')
          .where({ token_hash: hash(token), purpose })
          .forUpdate()
          .first();
        const verdict = judge(row);
        if (verdict.ok) {
          const siblings = trx('email_tokens')
            .where({ user_id: row!.user_id, purpose })
            .whereNull('used_at');
          if (keepEarlier) siblings.where('created_at', '>=', row!.created_at);
          await siblings.update({ used_at: trx.fn.now() });
        }
        return verdict;
      });
    },

    /** Uses up every unused token of the user, but those of the purposes in `except`. */
    async revokeAll(
      userId: string,
      except: EmailTokenPurpose[] = [],
      trx: Knex = db,
    ): Promise<number> {
      return affected(
        await trx('email_tokens')
          .where({ user_id: userId })
          .whereNull('used_at')
          .whereNotIn('purpose', except)
          .update({ used_at: trx.fn.now() }),
      );
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

    /**
     * Deletes tokens that expired more than a day ago (kept a while so a late click says
     * "expired"); in `trx`, the periodic sweep's.
     */
    async sweep(trx: Knex = db): Promise<number> {
      return affected(
        await trx('email_tokens')
          .where('expires_at', '<', new Date(Date.now() - 24 * 3600 * 1000))
          .delete(),
      );
    },
  };
}

export type EmailTokens = ReturnType<typeof createEmailTokens>;
