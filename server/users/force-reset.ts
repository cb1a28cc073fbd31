import type { Knex } from 'knex';
import type { Config } from '../../config/load.ts';
import type { Db } from '../db.ts';
import type { Logger } from '../log.ts';
import type { Mailer } from '../mail/mailer.ts';
import type { PasswordPolicy } from '../security/password-policy.ts';
import type { EmailTokens } from './email-tokens.ts';
import type { AccountSignOut } from './sign-out.ts';
import { emailResetLink } from './reset-link.ts';
import type { User, UserStore } from './store.ts';

type Deps = {
  db: Db;
  config: Config;
  users: UserStore;
  /** Only its history is used: no new password is checked here. */
  policy: Pick<PasswordPolicy, 'remember'>;
  tokens: EmailTokens;
  signOut: AccountSignOut;
  mailer: Mailer;
  log: Logger;
};

/**
 * An admin's "this account must choose a new password": the current one stops working at once,
 * every session and refresh token ends, and the owner is emailed a reset link. The link is
 * returned too, for the admin to pass on when the email could not be sent. The change and its
 * record (`recordWithin`) are one transaction; the link follows its commit.
 */
export async function forcePasswordReset(
  user: User,
  deps: Deps,
  recordWithin: (trx: Knex.Transaction) => Promise<void>,
): Promise<{ emailed: boolean; link: string }> {
  const { db, users, policy, signOut } = deps;
  const validFrom = Math.floor(Date.now() / 1000);
  const signedOut = await db.transaction(async (trx) => {
    await policy.remember(user.id, user.password_hash, trx);
    await users.clearPassword(user.id, trx);
    const ended = await signOut.within(trx, user.id, { validFrom });
    await recordWithin(trx);
    return ended;
  });
  await signOut.cleanUp(signedOut);
  const { sent, link } = await emailResetLink(deps, user);
  return { emailed: sent, link };
}
