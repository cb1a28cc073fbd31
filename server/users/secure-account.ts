import type { Config } from '../../config/load.ts';
import type { Audit, RequestFacts } from '../audit/audit.ts';
import { userEvent } from '../audit/audit.ts';
import type { Mfa } from '../mfa/mfa.ts';
import type { OwnerLock } from '../protection/owner-lock.ts';
import type { EmailTokenPurpose, EmailTokens, Redeemed } from './email-tokens.ts';
import type { AccountSignOut } from './sign-out.ts';
import { UserExistsError, type User, type UserStore } from './store.ts';

/** The security emails that carry a "this wasn't me" link. */
export type SecurityNotice = 'email_changed' | 'password_changed' | 'new_device' | 'factor_changed';

/**
 * A link back from an email after an email change goes to the old address and gives it back;
 * its tokens are kept apart ('restore_email') so that the link the thief gets at the new address
 * (a new-device notice, say) cannot use up the owner's.
 */
const PURPOSES: EmailTokenPurpose[] = ['secure_account', 'restore_email'];

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

/** What a "this wasn't me" link shows (peek) and does (secure). */
export function createAccountSecuring(deps: Deps) {
  const { tokens, users, ownerLock, signOut, audit } = deps;
  /** The token's purpose and what redeeming it would say; one hash lookup per purpose. */
  async function peek(token: string): Promise<Redeemed & { purpose: EmailTokenPurpose }> {
    let found: Redeemed = { ok: false, reason: 'invalid' };
    for (const purpose of PURPOSES) {
      found = await tokens.peek(token, purpose);
      if (found.ok || found.reason !== 'invalid') return { ...found, purpose };
    }
    return { ...found, purpose: 'secure_account' };
  }

  return {
    peek,

    /**
     * Redeems the link, then: locks the account until a password reset (or an admin), gives
     * back the old address, ends every session and grant (refresh tokens with them), and uses up
     * every other emailed link of the account (a reset or email-change link the thief holds).
     */
    async secure(
      token: string,
      facts: RequestFacts,
    ): Promise<{ ok: true; secured: Secured } | Exclude<Redeemed, { ok: true }>> {
      const { purpose } = await peek(token);
      // An earlier link outlives a later one: the thief's cannot use up the owner's, and the
      // owner who presses a later notice's link can still press an earlier one (the new sign-in
      // that came before a factor was added, say).
      const redeemed = await tokens.redeem(token, purpose, { keepEarlier: true });
      if (!redeemed.ok) return redeemed;
      const user = await users.findById(redeemed.userId);
      if (!user) return { ok: false, reason: 'invalid' };

      await ownerLock.lock(user.id);
      // A factor added since the event the email reported may be the intruder's: it would keep
      // the owner out after the reset. Older ones stay, so that whoever reads the mailbox cannot
      // strip a factor that predates what they press about (a reset they asked for, say).
      const noticeAt = Date.parse(String(redeemed.data.at)) || Date.now();
      const factorsRemoved = await deps.mfa.forgetSince(user.id, new Date(noticeAt));
      const secured: Secured = { user, factorsRemoved };
      const restore = redeemed.data.email;
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
          notice: redeemed.data.notice,
          emailRestored: Boolean(secured.restoredEmail),
          factorsRemoved,
          sessions,
          grants,
        }),
        facts,
      );
      secured.user = (await users.findById(user.id)) ?? user;
      return { ok: true, secured };
    },
  };
}

export type AccountSecuring = ReturnType<typeof createAccountSecuring>;
