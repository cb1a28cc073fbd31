import type { Config } from '../../config/load.ts';
import type { Logger } from '../log.ts';
import type { Mailer } from '../mail/mailer.ts';
import type { PasswordPolicy } from '../security/password-policy.ts';
import type { EmailTokens } from './email-tokens.ts';
import type { AccountSignOut } from './sign-out.ts';
import { emailResetLink } from './reset-link.ts';
import type { User, UserStore } from './store.ts';

type Deps = {
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
 * returned too, for the admin to pass on when the email could not be sent.
 */
export async function forcePasswordReset(
  user: User,
  deps: Deps,
): Promise<{ emailed: boolean; link: string }> {
  const { users, policy, signOut } = deps;
  await policy.remember(user.id, user.password_hash);
  await users.clearPassword(user.id);
  await signOut.endSessions(user.id);
  await signOut.revokeGrants(user.id);
  const { sent, link } = await emailResetLink(deps, user);
  return { emailed: sent, link };
}
