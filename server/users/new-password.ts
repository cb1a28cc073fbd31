import type { Config } from '../../config/load.ts';
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
  users: UserStore;
  policy: PasswordPolicy;
  signOut: AccountSignOut;
  mailer: Mailer;
  config: Config;
  tokens: EmailTokens;
  log: Logger;
};

/**
 * Replaces a user's password: the old hash joins the history, and whoever knew the old password
 * is out: every session but `keepSession` ends, and every grant (the apps' refresh tokens) but
 * `keepGrants` is revoked, and so is every pending emailed link. The owner is told by email, with
 * a "this wasn't me" link. Returns the time a sign-in that follows must carry.
 */
export function passwordSetter(deps: Deps) {
  const { users, policy, signOut, mailer } = deps;
  return async (
    user: User,
    password: string,
    { keepSession, keepGrants = [] }: { keepSession?: string; keepGrants?: string[] } = {},
  ) => {
    await policy.remember(user.id, user.password_hash);
    await users.setPassword(user.id, password);
    const { validFrom } = await signOut.endSessions(user.id, keepSession);
    await signOut.revokeGrants(user.id, keepGrants);
    // And so are its emailed links (a pending email change, a reset): all but the owner's way
    // back ("this wasn't me").
    await deps.tokens.revokeAll(user.id, ['secure_account', 'restore_email']);
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
    // A sign-in this request finishes (the reset's) counts from then: see endSessions.
    return { signedInAt: validFrom };
  };
}

export type PasswordSetter = ReturnType<typeof passwordSetter>;
