import type { Knex } from 'knex';
import type { Config } from '../../config/load.ts';
import type { Audit, RequestFacts, SuccessEvent } from '../audit/audit.ts';
import type { Db } from '../db.ts';
import type { Logger } from '../log.ts';
import type { Mailer } from '../mail/mailer.ts';
import type { PasswordContext, PasswordPolicy } from '../security/password-policy.ts';
import type { EmailTokens } from './email-tokens.ts';
import { secureAccountLink } from './secure-account.ts';
import type { AccountSignOut } from './sign-out.ts';
import type { User, UserStore } from './store.ts';

/** What is wrong with a new password typed twice, in the words the form shows; empty when fine. */
export async function newPasswordProblems(
  policy: PasswordPolicy,
  password: string,
  confirm: string,
  context: PasswordContext,
): Promise<string[]> {
  const verdict = await policy.check(password, context);
  const problems = verdict.ok ? [] : verdict.problems.map((p) => p.message);
  if (password !== confirm) problems.push('The two passwords are not the same.');
  return problems;
}

export const passwordContext = (user: User): PasswordContext => ({
  email: user.email,
  name: user.name ?? undefined,
  userId: user.id,
});

type Deps = {
  db: Db;
  audit: Audit;
  users: UserStore;
  policy: PasswordPolicy;
  signOut: AccountSignOut;
  mailer: Mailer;
  config: Config;
  tokens: EmailTokens;
  log: Logger;
};

export type PasswordChange = {
  /** The audit row that records the change; it commits with it or neither does. */
  event: SuccessEvent;
  facts: RequestFacts;
  keepSession?: string | undefined;
  keepGrants?: string[];
  /** More writes that stand or fall with the change (a reset spends its link there). */
  alsoWithin?: (trx: Knex.Transaction) => Promise<void>;
};

/**
 * Replaces a user's password: the old hash joins the history, and whoever knew the old password
 * is out: every session but `keepSession` ends, and every grant (the apps' refresh tokens) but
 * `keepGrants` is revoked, and so is every pending emailed link. All of that and its audit row
 * are one transaction: should it fail, nothing changed (the user is told to try again). What
 * follows the commit cannot undo it or fail the request: deleting what no longer works, and
 * the owner's email, with a "this wasn't me" link. Returns the time a sign-in that follows must
 * carry.
 */
export function passwordSetter(deps: Deps) {
  const { db, audit, users, policy, signOut, mailer } = deps;
  return async (user: User, password: string, change: PasswordChange) => {
    const { keepSession, keepGrants, facts } = change;
    const hash = await users.hashPassword(password);
    // A sign-in this request finishes (the reset's) counts from then.
    const validFrom = Math.floor(Date.now() / 1000);
    if (keepSession) await signOut.keepSession(user.id, keepSession, validFrom);
    const signedOut = await db.transaction(async (trx) => {
      // First: a link it spends is spent before the user's other links are revoked below.
      await change.alsoWithin?.(trx);
      await policy.remember(user.id, user.password_hash, trx);
      if (!(await users.setPasswordHash(user.id, hash, trx)))
        throw new Error('only a local account has a password here');
      const ended = await signOut.within(trx, user.id, { validFrom, keepSession, keepGrants });
      // And so are its emailed links (a pending email change, a reset): all but the owner's way
      // back ("this wasn't me").
      await deps.tokens.revokeAll(user.id, ['secure_account', 'restore_email'], trx);
      await audit.within(trx, change.event, facts);
      return ended;
    });
    await signOut.cleanUp(signedOut);
    const at = new Date();
    mailer.sendInBackground(async () => ({
      to: user.email,
      template: 'password-changed',
      data: {
        time: new Date(),
        ...(await secureAccountLink(deps, user.id, 'password_changed', { at })),
        name: user.name ?? undefined,
      },
    }));
    return { signedInAt: validFrom };
  };
}

export type PasswordSetter = ReturnType<typeof passwordSetter>;
