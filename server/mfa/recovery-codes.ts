import { createHmac, hkdfSync, randomInt } from 'node:crypto';
import { affected, type Db } from '../db.ts';

const COUNT = 10;
// Crockford-style alphabet without look-alikes (no 0/O, 1/I/L): easy to copy from paper.
const ALPHABET = '23456789ABCDEFGHJKMNPQRSTUVWXYZ';
const LENGTH = 10; // ~49 bits each

/** "abcde-fghij", "ABCDE FGHIJ" and "ABCDEFGHIJ" are the same code. */
const normalise = (code: string) => code.toUpperCase().replace(/[^0-9A-Z]/g, '');

function newCode(): string {
  const chars = Array.from({ length: LENGTH }, () => ALPHABET[randomInt(ALPHABET.length)]).join('');
  return `${chars.slice(0, 5)}-${chars.slice(5)}`;
}

/**
 * Ten one-time recovery codes per user, shown once and stored as keyed hashes (HMAC-SHA-256
 * under a key derived from the sealing key: a leaked table alone cannot be brute-forced).
 */
export function createRecoveryCodes(db: Db, sealingKey: Buffer) {
  const key = Buffer.from(hkdfSync('sha256', sealingKey, '', 'latchkey recovery codes', 32));
  const hash = (code: string) =>
    createHmac('sha256', key).update(normalise(code)).digest('base64url');

  return {
    /** A new set; the old one stops working. Returns the codes to show once. */
    async regenerate(userId: string): Promise<string[]> {
      const codes = Array.from({ length: COUNT }, newCode);
      await db.transaction(async (trx) => {
        await trx('recovery_codes').where({ user_id: userId }).delete();
        await trx('recovery_codes').insert(
          codes.map((c) => ({ user_id: userId, code_hash: hash(c) })),
        );
      });
      return codes;
    },

    /** Uses a code up; false for a wrong or already used one. */
    async redeem(userId: string, code: string): Promise<boolean> {
      if (normalise(code).length !== LENGTH) return false;
      const used = await db('recovery_codes')
        .where({ user_id: userId, code_hash: hash(code) })
        .whereNull('used_at')
        .update({ used_at: db.fn.now() });
      return affected(used) === 1;
    },

    async remaining(userId: string): Promise<number> {
      const row = await db('recovery_codes')
        .where({ user_id: userId })
        .whereNull('used_at')
        .count({ n: '*' })
        .first();
      return Number(row?.n ?? 0);
    },

    async clear(userId: string): Promise<void> {
      await db('recovery_codes').where({ user_id: userId }).delete();
    },
  };
}

export type RecoveryCodes = ReturnType<typeof createRecoveryCodes>;
