import type { User } from '../accounts/users.ts';
import type { RequestFacts } from '../audit/audit.ts';
import type { Lockout } from './lockout.ts';
import { accountKey, type LimitKey, type RateLimits, type Verdict } from './rate-limits.ts';

/**
 * What guards every way of proving who one is (password now; MFA codes, passkeys and directory
 * binds count the same way): the per-IP and per-account limits on failures, and the account lockout.
 */
export function createSignInGuard(limits: RateLimits, lockout: Lockout) {
  const keys = (ip: string, email: string): LimitKey[] => [
    ['login_ip', ip],
    ['login_account', accountKey(email)],
  ];
  return {
    /** Before checking a secret: refused when this IP or this email has failed too often. */
    async before(ip: string, email: string): Promise<Verdict & { accountClean: boolean }> {
      const { clean, ...verdict } = await limits.check(...keys(ip, email));
      return { ...verdict, accountClean: clean.includes('login_account') };
    },

    /** A failed attempt: counts for the IP and the email, and toward the account's lockout. */
    async failed(ip: string, email: string, user: User | undefined, facts: RequestFacts) {
      await limits.consume(...keys(ip, email));
      if (user && !user.disabled) await lockout.failed(user, facts);
    },

    /** Before a passkey sign-in, where no email is typed: this IP's failures alone. */
    beforeFromIp: (ip: string): Promise<Verdict> => limits.check(['login_ip', ip]),

    /** A failed passkey sign-in counts for the IP only: nobody's account is known to blame. */
    async failedFromIp(ip: string) {
      await limits.consume(['login_ip', ip]);
    },

    /**
     * A successful sign-in clears the account's failures (the IP's count stays), unless this
     * request's check found none to clear.
     */
    async succeeded(email: string, user: User, accountClean = false) {
      await Promise.all([
        !accountClean && limits.reset('login_account', accountKey(email)),
        lockout.succeeded(user),
      ]);
    },
  };
}

export type SignInGuard = ReturnType<typeof createSignInGuard>;
