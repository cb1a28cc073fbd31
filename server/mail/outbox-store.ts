import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { affected, type Db } from '../db.ts';
import { seal, unseal, type SealedField } from '../security/seal.ts';
import type { MailTemplate } from './templates.ts';
import type { OutgoingMail } from './transport.ts';

const TABLE = 'mail_outbox';

/** The sealed message opens only in its own row of this table. */
const field = (id: string): SealedField => ({ table: TABLE, column: 'message', row: id });

/** A mail this process holds until it reports how its delivery went. */
export type ClaimedMail = {
  id: string;
  template: MailTemplate;
  /** Attempts so far, this one included. */
  attempts: number;
  expiresAt: Date;
  /** Undefined when the message no longer opens (another sealing key): it cannot be sent. */
  mail: OutgoingMail | undefined;
  claim: string;
};

type Row = { id: string; template: MailTemplate; message: string; attempts: number };

/**
 * The mail_outbox table: mail is stored, sealed, before any attempt to send it, and leaves only
 * once sent. Processes share it: a claim is one atomic step (FOR UPDATE SKIP LOCKED), so each
 * mail is held by one process at a time, and a claim lapses after its lease, so mail held by a
 * process that died is tried again by another.
 */
export function createOutboxStore(db: Db, sealingKey: Buffer) {
  /** The outcome of an attempt applies only while the claim is still this one. */
  const mine = (claimed: ClaimedMail) => db(TABLE).where({ id: claimed.id, claim: claimed.claim });

  return {
    async add(mail: OutgoingMail, expiresAt: Date): Promise<string> {
      const id = randomUUID();
      const message = seal(sealingKey, JSON.stringify(mail), field(id));
      await db(TABLE).insert({ id, template: mail.template, message, expires_at: expiresAt });
      return id;
    },

    /** How many mails the outbox holds, waiting (pending, due or not) and given up (failed). */
    async depth(): Promise<{ pending: number; failed: number }> {
      const rows: { status: string; n: string | number }[] = await db(TABLE)
        .select('status')
        .count({ n: '*' })
        .groupBy('status');
      const of = (status: string) => Number(rows.find((r) => r.status === status)?.n ?? 0);
      return { pending: of('pending'), failed: of('failed') };
    },

    /** Up to `limit` mails due now, held for `leaseMs`, oldest due first. */
    async claim(limit: number, leaseMs: number): Promise<ClaimedMail[]> {
      const claim = randomUUID();
      const { rows } = await db.raw(
        `UPDATE ${TABLE}
            SET claim = ?, attempts = attempts + 1, due_at = now() + ? * interval '1 millisecond'
          WHERE id IN (SELECT id FROM ${TABLE}
                        WHERE status = 'pending' AND due_at <= now()
                        ORDER BY due_at LIMIT ? FOR UPDATE SKIP LOCKED)
      RETURNING id, template, message, attempts, expires_at`,
        [claim, leaseMs, limit],
      );
      return (rows as (Row & { expires_at: Date | string })[]).map((row) => {
        let mail: OutgoingMail | undefined;
        try {
          mail = JSON.parse(unseal(sealingKey, row.message, field(row.id))) as OutgoingMail;
        } catch {
          mail = undefined;
        }
        const expiresAt = new Date(row.expires_at);
        return {
          id: row.id,
          template: row.template,
          attempts: row.attempts,
          expiresAt,
          mail,
          claim,
        };
      });
    },

    /** Delivered: the row and its live links go. */
    async sent(claimed: ClaimedMail): Promise<void> {
      await mine(claimed).delete();
    },

    /** Not delivered for now: tried again after `delayMs`, by whichever process claims it. */
    async retryLater(claimed: ClaimedMail, delayMs: number, error: string): Promise<void> {
      await mine(claimed).update({
        claim: null,
        due_at: db.raw(`now() + ? * interval '1 millisecond'`, [delayMs]),
        last_error: error,
      });
    },

    /**
     * Never to be delivered: the row stays, marked failed, without its message. Returns how many
     * mails the outbox now holds as failed.
     */
    async giveUp(claimed: ClaimedMail, error: string): Promise<number> {
      await mine(claimed).update({
        status: 'failed',
        claim: null,
        message: null,
        last_error: error,
      });
      const [row] = await db(TABLE).where({ status: 'failed' }).count({ n: '*' });
      return Number(row?.n ?? 0);
    },

    /**
     * Deletes in `trx` the waiting mail addressed to `address` (an account being deleted): the
     * recipient is sealed, so each waiting row is opened to find it. Returns how many went.
     */
    async forgetMailTo(trx: Knex, address: string): Promise<number> {
      const rows: Pick<Row, 'id' | 'message'>[] = await trx(TABLE)
        .select('id', 'message')
        .whereNotNull('message');
      const wanted = address.trim().toLowerCase();
      const theirs = rows
        .filter((row) => {
          try {
            const mail = JSON.parse(unseal(sealingKey, row.message, field(row.id))) as OutgoingMail;
            return String(mail.to).trim().toLowerCase() === wanted;
          } catch {
            return false;
          }
        })
        .map((row) => row.id);
      return theirs.length ? affected(await trx(TABLE).whereIn('id', theirs).delete()) : 0;
    },

    /** Mail waiting out a backoff becomes due now: the SMTP server took a mail again. */
    async wakeWaiting(): Promise<number> {
      return affected(
        await db(TABLE)
          .where({ status: 'pending' })
          .whereNull('claim')
          .where('due_at', '>', db.fn.now())
          .update({ due_at: db.fn.now() }),
      );
    },
  };
}

export type OutboxStore = ReturnType<typeof createOutboxStore>;

/** How long a mail given up stays listed (without its content) for an operator to look into. */
export const GIVEN_UP_KEPT_DAYS = 7;

/** Deletes mails given up more than GIVEN_UP_KEPT_DAYS ago; run by the periodic sweep. */
export async function sweepGivenUpMail(db: Db): Promise<number> {
  return affected(
    await db(TABLE)
      .where({ status: 'failed' })
      .where('created_at', '<', db.raw(`now() - ? * interval '1 day'`, [GIVEN_UP_KEPT_DAYS]))
      .delete(),
  );
}
