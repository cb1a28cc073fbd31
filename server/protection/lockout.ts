import type { Config } from '../../config/load.ts';
import type { EmailTokens } from '../accounts/email-tokens.ts';
import { resetLink } from '../accounts/reset-link.ts';
import type { User } from '../accounts/users.ts';
import type { Audit, AuditEvent, RequestFacts } from '../audit/audit.ts';
import type { Db } from '../db.ts';
import type { Logger } from '../log.ts';
import type { Mailer } from '../mail/mailer.ts';
import { isOwnerLocked } from './owner-lock.ts';
import { accountKey, type RateLimits } from './rate-limits.ts';

type Deps = {
  db: Db;
  config: Config;
  tokens: EmailTokens;
  mailer: Mailer;
  audit: Audit;
  limits: RateLimits;
  log: Logger;
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
 */
export function createLockout({ db, config, tokens, mailer, audit, limits, log }: Deps) {
  const { threshold, periodsSeconds } = config.lockout;

  async function lock(user: User, lockouts: number, facts: RequestFacts) {
    const seconds = periodsSeconds[Math.min(lockouts, periodsSeconds.length - 1)]!;
    // Only the request that saw the threshold reached locks (concurrent failures lock once).
    const [row] = await db('users')
      .where({ id: user.id })
      .where('failed_sign_ins', '>=', threshold)
      .update({
        failed_sign_ins: 0,
        lockouts: db.raw('lockouts + 1'),
        locked_until: db.raw(`now() + make_interval(secs => ?)`, [seconds]),
      })
      .returning(['locked_until']);
    if (!row) return;
    const until = new Date(row.locked_until);
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
    const token = await tokens.issue(user.id, 'unlock_account', config.emailLinks.verifyTtl);
    const sent = await mailer.send({
      to: user.email,
      template: 'account-locked',
      data: {
        until,
        link: `${config.issuer}/unlock?token=${token}`,
        resetLink: await resetLink({ config, tokens }, user),
        name: user.name ?? undefined,
      },
    });
    if (!sent.sent) log.error({ userId: user.id }, 'account-locked email not sent');
  }

  return {
    /** A wrong password for this account; may lock it. Attempts while locked do not count. */
    async failed(user: User, facts: RequestFacts): Promise<void> {
      if (threshold === 0 || isLocked(user)) return;
      const [row] = await db('users')
        .where({ id: user.id })
        .increment('failed_sign_ins', 1)
        .returning(['failed_sign_ins', 'lockouts']);
      if (row && row.failed_sign_ins >= threshold) await lock(user, row.lockouts, facts);
    },

    /** A successful sign-in: the count starts again (no write when there is nothing to clear). */
    async succeeded(user: User): Promise<void> {
      if (hasFailures(user))
        await db('users')
          .where({ id: user.id })
          .update({ failed_sign_ins: 0, lockouts: 0, locked_until: null });
    },

    /**
     * Unlocks now, by the emailed link (actor user) or an admin (the CLI), and forgets the
     * email's failed sign-ins too, or the owner would meet the per-account limit instead.
     */
    async unlock(user: User, actor: AuditEvent['actor'], facts: RequestFacts = {}) {
      await db('users')
        .where({ id: user.id })
        .update({ failed_sign_ins: 0, lockouts: 0, locked_until: null });
      await limits.reset('login_account', accountKey(user.email));
      await audit({ type: 'account_unlocked', outcome: 'success', actor, subject: user.id }, facts);
    },
  };
}

export type Lockout = ReturnType<typeof createLockout>;
