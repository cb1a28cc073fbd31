import type { Config } from '../../config/load.ts';
import type { Audit, RequestFacts } from '../audit/audit.ts';
import { userEvent } from '../audit/audit.ts';
import type { Mfa } from '../mfa/mfa.ts';
import type { OwnerLock } from '../protection/owner-lock.ts';
import type { EmailTokenPurpose, EmailTokens } from './email-tokens.ts';
import type { AccountSignOut } from './sign-out.ts';
import { UserExistsError, type User, type UserStore } from './store.ts';

/** The security emails that carry a "this wasn't me" link. */
export type SecurityNotice = 'email_changed' | 'password_changed' | 'new_device' | 'factor_changed';

/**
 * A link back from an email after an email change goes to the old address and gives it back;
 * its tokens are kept apart ('restore_email') so that the link the thief gets at the new address
 * (a new-device notice, say) cannot use up the owner's.
 */
export const SECURE_ACCOUNT_PURPOSES: readonly EmailTokenPurpose[] = [
  'secure_account',
  'restore_email',
];

type LinkDeps = { config: Config; tokens: EmailTokens };

/**
 * Issues the single-use "this wasn't me" link of a security email, valid
 * SECURE_ACCOUNT_LINK_TTL, about an event at `at` (take it in the request: mail is made in the
 * background, later). With `restoreEmail` (an email change) it also gives that address back.
 */
export async function secureAccountLink(
  { config, tokens }: LinkDeps,
  userId: string,
  notice: SecurityNotice,
  { at, restoreEmail }: { at: Date; restoreEmail?: string },
): Promise<{ link: string; expiresInDays: number }> {
  const token = await tokens.issue(
    userId,
    restoreEmail ? 'restore_email' : 'secure_account',
    config.emailLinks.secureTtl,
    { notice, at: at.toISOString(), ...(restoreEmail && { email: restoreEmail }) },
  );
  return {
    link: `${config.issuer}/secure-account?token=${token}`,
    expiresInDays: Math.max(1, Math.round(config.emailLinks.secureTtl / 86400)),
  };
}

export type Secured = {
  user: User;
  /** The address given back, when the link came after an email change. */
  restoredEmail?: string;
  /** The address could not be given back: another account uses it now. */
  emailTaken?: string;
  /** Second factors added since the notice's event, removed as possibly the intruder's. */
  factorsRemoved: number;
};

type Deps = {
  mfa: Pick<Mfa, 'forgetSince'>;
  tokens: EmailTokens;
  users: UserStore;
  ownerLock: OwnerLock;
  signOut: AccountSignOut;
  audit: Audit;
};

/** What pressing a "this wasn't me" link does, once its token is spent. */
export function createAccountSecuring(deps: Deps) {
  const { tokens, users, ownerLock, signOut, audit } = deps;
  return {
    /**
     * Locks the account until a password reset (or an admin), gives back the old address, ends
     * every session and grant (refresh tokens with them), and uses up every other emailed link
     * of the account (a reset or email-change link the thief holds).
     */
    async secure(
      { user, data }: { user: User; data: Record<string, unknown> },
      facts: RequestFacts,
    ): Promise<Secured> {
      await ownerLock.lock(user.id);
      // A factor added since the event the email reported may be the intruder's: it would keep
      // the owner out after the reset. Older ones stay, so that whoever reads the mailbox cannot
      // strip a factor that predates what they press about (a reset they asked for, say).
      const noticeAt = Date.parse(String(data.at)) || Date.now();
      const factorsRemoved = await deps.mfa.forgetSince(user.id, new Date(noticeAt));
      const secured: Secured = { user, factorsRemoved };
      const restore = data.email;
      if (typeof restore === 'string') {
        try {
          if (restore.toLowerCase() !== user.email.toLowerCase())
            await users.setEmail(user.id, restore);
          secured.restoredEmail = restore;
        } catch (err) {
          if (!(err instanceof UserExistsError)) throw err;
          secured.emailTaken = restore;
        }
      }
      const { ended: sessions } = await signOut.endSessions(user.id);
      const grants = await signOut.revokeGrants(user.id);
      // After the sessions end, so no link issued by a request still in flight survives.
      await tokens.revokeAll(user.id, ['restore_email', 'secure_account']);
      await audit(
        userEvent('account_secured_by_owner', user.id, {
          notice: data.notice,
          emailRestored: Boolean(secured.restoredEmail),
          factorsRemoved,
          sessions,
          grants,
        }),
        facts,
      );
      secured.user = (await users.findById(user.id)) ?? user;
      return secured;
    },
  };
}

export type AccountSecuring = ReturnType<typeof createAccountSecuring>;
