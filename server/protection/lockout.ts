import type { Knex } from 'knex';
import type { Config } from '../../config/load.ts';
import type { EmailTokens } from '../users/email-tokens.ts';
import { resetLink } from '../users/reset-link.ts';
import type { User } from '../users/store.ts';
import type { Audit, AuditEvent, RequestFacts } from '../audit/audit.ts';
import type { Db } from '../db.ts';
import type { Logger } from '../log.ts';
import type { Mailer } from '../mail/mailer.ts';
import { NO_METRICS, type Metrics } from '../metrics/metrics.ts';
import { isOwnerLocked, type OwnerLock } from './owner-lock.ts';
import { type RateLimits, userKey } from './rate-limits.ts';

type Deps = {
  db: Db;
  config: Config;
  tokens: EmailTokens;
  mailer: Mailer;
  audit: Audit;
  limits: RateLimits;
  log: Logger;
  metrics?: Metrics | undefined;
};

/** Whether the account holds failed sign-ins or lockouts for a success to clear. */
export function hasFailures(user: User): boolean {
  return Boolean(user.failed_sign_ins || user.lockouts || user.locked_until);
}

export function isLocked(
  user: Pick<User, 'locked_until' | 'owner_locked_at'>,
  now = Date.now(),
): boolean {
  if (isOwnerLocked(user)) return true;
  return !!user.locked_until && new Date(user.locked_until).getTime() > now;
}

/**
 * Account lockout: LOCKOUT_THRESHOLD failed sign-ins in a row lock the account for the next of
 * LOCKOUT_PERIODS, and its owner gets an email with an unlock link. The state lives on the
 * user row, so every process sees it; a successful sign-in, the link or the CLI clears it.
 * Counting a failure and deciding the lock is one UPDATE … RETURNING: of concurrent failures
 * exactly one locks, and failures while locked count nothing.
 */
export function createLockout({
  db,
  config,
  tokens,
  mailer,
  audit,
  limits,
  log,
  metrics = NO_METRICS,
}: Deps) {
  const { threshold, periodsSeconds } = config.lockout;
  const periods = periodsSeconds.map(() => '?').join(', ');

  /** The lock's record and email, after the answer: the fifth failure costs what the fourth did. */
  async function announce(user: User, lockouts: number, until: Date, facts: RequestFacts) {
    const seconds = periodsSeconds[Math.min(lockouts - 1, periodsSeconds.length - 1)]!;
    await audit(
      {
        type: 'account_locked',
        outcome: 'success',
        actor: { type: 'system' },
        subject: user.id,
        detail: { failures: threshold, seconds, until: until.toISOString() },
      },
      facts,
    );
    mailer.sendInBackground(async () => ({
      to: user.email,
      template: 'account-locked' as const,
      data: {
        until,
        link: `${config.issuer}/unlock?token=${await tokens.issue(user.id, 'unlock_account', config.emailLinks.verifyTtl)}`,
        resetLink: await resetLink({ config, tokens }, user),
        name: user.name ?? undefined,
      },
    }));
  }

  const lockout = {
    /**
     * Whether the account is locked now (read fresh: a concurrent failure may just have locked
     * it). The owner's own lock ("this wasn't me") holds for every browser; the lock failed
     * guesses set does not hold a browser that signed in to the account before (`knownDevice`).
     */
    async lockedNow(userId: string, { knownDevice = false } = {}): Promise<boolean> {
      const guesses = threshold > 0 && !knownDevice;
      const row = await db('users')
        .where({ id: userId })
        .first(
          db.raw(
            `owner_locked_at is not null ${guesses ? 'or coalesce(locked_until > now(), false)' : ''} as locked`,
          ),
        );
      return Boolean(row?.locked);
    },

    /**
     * A failure at this account: counted unless it is locked, and the one failure that reaches
     * the threshold locks it. True when this call locked it.
     */
    async failed(user: User, facts: RequestFacts): Promise<boolean> {
      if (threshold === 0) return false;
      const reached = 'failed_sign_ins + 1 >= ?';
      const { rows } = await db.raw(
        `UPDATE users SET
           failed_sign_ins = CASE WHEN ${reached} THEN 0 ELSE failed_sign_ins + 1 END,
           lockouts = CASE WHEN ${reached} THEN lockouts + 1 ELSE lockouts END,
           locked_until = CASE WHEN ${reached}
             THEN now() + make_interval(secs => (ARRAY[${periods}]::int[])[least(lockouts, ?) + 1])
             ELSE locked_until END
         WHERE id = ? AND (locked_until IS NULL OR locked_until <= now())
         RETURNING lockouts, locked_until, coalesce(locked_until > now(), false) AS locked`,
        [threshold, threshold, threshold, ...periodsSeconds, periodsSeconds.length - 1, user.id],
      );
      const row = rows[0] as { lockouts: number; locked_until: Date; locked: boolean } | undefined;
      if (!row?.locked) return false;
      metrics.lockouts.inc();
      void announce(user, row.lockouts, new Date(row.locked_until), facts).catch((err: unknown) =>
        log.error({ err, userId: user.id }, 'account-locked record or email failed'),
      );
      return true;
    },

    /** A successful sign-in: the count starts again (no write when there is nothing to clear). */
    async succeeded(user: User, trx: Knex = db): Promise<void> {
      if (hasFailures(user))
        await trx('users')
          .where({ id: user.id })
          .update({ failed_sign_ins: 0, lockouts: 0, locked_until: null });
    },

    /**
     * Unlocks now, by the emailed link (actor user) or an admin (the CLI), and forgets the
     * email's failed sign-ins too, or the owner would meet the per-account limit instead.
     */
    async unlock(user: User, actor: AuditEvent['actor'], facts: RequestFacts = {}) {
      await db.transaction((trx) => lockout.unlockWithin(trx, user, actor, facts));
      await lockout.forgetFailures(user);
    },

    /** The unlock and its audit row, in `trx`; forgetFailures follows its commit. */
    async unlockWithin(
      trx: Knex.Transaction,
      user: User,
      actor: AuditEvent['actor'],
      facts: RequestFacts = {},
    ) {
      await trx('users')
        .where({ id: user.id })
        .update({ failed_sign_ins: 0, lockouts: 0, locked_until: null });
      const event = { type: 'account_unlocked', outcome: 'success' as const, actor };
      await audit.within(trx, { ...event, subject: user.id }, facts);
    },

    /** The per-account limit's count of the email's failed sign-ins starts again. */
    forgetFailures: (user: User) => limits.reset('login_account', userKey(user)),
  };
  return lockout;
}

export type Lockout = ReturnType<typeof createLockout>;

/**
 * An admin's unlock (the CLI's `users unlock`, the admin API's): ends the lock of failed
 * sign-ins and forgets them, and lifts the owner's own lock ("this wasn't me") too, the admin
 * having judged it safe. Says what there was to lift.
 */
export async function unlockByAdmin(
  { db, lockout, ownerLock }: { db: Db; lockout: Lockout; ownerLock: OwnerLock },
  user: User,
  actor: AuditEvent['actor'],
  facts: RequestFacts = {},
): Promise<{ wasLocked: boolean; ownerLockLifted: boolean }> {
  const result = await db.transaction(async (trx) => {
    const row = await trx('users')
      .where({ id: user.id })
      .forUpdate()
      .first(trx.raw('coalesce(locked_until > now(), false) as locked'));
    const ownerLockLifted = await ownerLock.release(user.id, trx);
    await lockout.unlockWithin(trx, user, actor, facts);
    return { wasLocked: Boolean(row?.locked), ownerLockLifted };
  });
  await lockout.forgetFailures(user);
  return result;
}
