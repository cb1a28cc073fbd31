import type { Context } from 'koa';
import type { User } from '../users/store.ts';
import { requestFacts } from '../audit/audit.ts';
import type { DeviceCookies } from './device-cookies.ts';
import type { InFlight } from './in-flight.ts';
import { hasFailures, type Lockout } from './lockout.ts';
import { accountKey, senderKey, userKey, type LimitKey, type RateLimits } from './rate-limits.ts';

/** Who an attempt is at. Neither: a passkey sign-in, where only the IP is known to count. */
export type AttemptSubject = {
  /** The account, when known before checking (whichever login was typed): the key is the account. */
  user?: User | undefined;
  /** What was typed, the key when no account is known (so known and unknown count alike). */
  login?: string | undefined;
  /** Whether this browser's device cookie may stand in for the account's limit and lock (true by default). */
  trustDevice?: boolean;
  /**
   * Count a known browser's failures toward the account's lock all the same (they are not held
   * by it): for second factors, guessed only after the right password.
   */
  countDeviceFailures?: boolean;
};

/** What a verification says. `uncounted`: it proved nothing either way (an outage, an expired challenge). */
export type Verified = { ok: boolean; uncounted?: boolean };

export type AttemptOutcome<T> =
  /** Nothing was verified: over a limit, or too many attempts in flight. Answer 429. */
  | { status: 'refused'; retryAfterSeconds: number }
  /** Verified (or skipped, at the caller's choice) while the account is locked for this browser. */
  | { status: 'locked'; result: T }
  | { status: 'failed'; result: T }
  /** `clean`: the account holds no failures for `completed` to clear. */
  | { status: 'ok'; result: T; clean: boolean };

type Deps = {
  limits: RateLimits;
  lockout: Lockout;
  devices: DeviceCookies;
  inFlight: InFlight;
  caps: { account: number; ip: number };
};

/** Over the in-flight cap: come back in a moment (the attempts ahead take some 50 ms each). */
const BUSY = { status: 'refused', retryAfterSeconds: 1 } as const;

/**
 * The one guard of every way of proving who one is: passwords at sign-in, second-factor codes,
 * passkeys, and current-password checks on account pages. Use it as:
 *
 *   const outcome = await guard.attempt(ctx, { user, login }, ({ locked }) => verify());
 *   // refused → 429 page; locked | failed → "incorrect" (same answer); ok → carry on.
 *   // When the whole sign-in is done (second factor included): await guard.completed(ctx, user).
 *
 * `attempt` reserves before verifying (one point per IP and per account, or per device cookie
 * when this browser already signed in to the account, in the shared store), caps the attempts
 * this process checks at once per key, runs `verify`, then settles: a success gives its points
 * back, a failure keeps them and counts toward the lockout in one atomic statement. `verify` is
 * told whether the account is locked: a password check does its work anyway (a locked account
 * answers like a wrong password after the same work), a one-time code need not spend the code.
 */
export function createSignInGuard({ limits, lockout, devices, inFlight, caps }: Deps) {
  function keysOf(ctx: Context, subject: AttemptSubject) {
    const { user, login, trustDevice = true } = subject;
    const device = user && trustDevice ? devices.known(ctx, user) : undefined;
    const account: LimitKey | undefined = device
      ? ['login_device', device]
      : user
        ? ['login_account', userKey(user)]
        : login !== undefined
          ? ['login_account', accountKey(login)]
          : undefined;
    const ip: LimitKey = ['login_ip', senderKey(ctx.ip)];
    return { device, account, keys: account ? [ip, account] : [ip] };
  }

  async function once<T extends Verified>(
    ctx: Context,
    subject: AttemptSubject,
    verify: (state: { locked: boolean }) => Promise<T>,
  ): Promise<AttemptOutcome<T> & { device?: string | undefined }> {
    const { device, account, keys } = keysOf(ctx, subject);
    const release = inFlight.enter(
      keys.map(([name, key]) => [`${name}:${key}`, name === 'login_ip' ? caps.ip : caps.account]),
    );
    if (!release) return BUSY;
    try {
      const reserved = await limits.reserve(...keys);
      if (!reserved.ok)
        return { status: 'refused', retryAfterSeconds: reserved.retryAfterSeconds, device };
      const user = subject.user && !subject.user.disabled ? subject.user : undefined;
      // A browser known to the account is not held by the lock others' guesses set (nor are
      // its failures counted toward it); the owner's own lock holds it all the same.
      const lockedNow = () =>
        user ? lockout.lockedNow(user.id, { knownDevice: !!device }) : Promise.resolve(false);
      const locked = await lockedNow();
      const result = await verify({ locked });
      if (result.uncounted) {
        await limits.refund(...keys);
        return { status: 'failed', result };
      }
      if (!result.ok) {
        if (user && (!device || subject.countDeviceFailures) && !locked)
          await lockout.failed(user, requestFacts(ctx));
        return { status: locked ? 'locked' : 'failed', result };
      }
      // A concurrent failure may have locked the account while this one was being verified.
      if (locked || (await lockedNow())) return { status: 'locked', result };
      const [, left] = await Promise.all([
        limits.refund(keys[0]!),
        account ? limits.refund(account) : { empty: true },
      ]);
      const clean = left.empty && !(subject.user && hasFailures(subject.user));
      return { status: 'ok', result, clean };
    } finally {
      release();
    }
  }

  return {
    async attempt<T extends Verified>(
      ctx: Context,
      subject: AttemptSubject,
      verify: (state: { locked: boolean }) => Promise<T>,
    ): Promise<AttemptOutcome<T>> {
      const outcome = await once(ctx, subject, verify);
      // OWASP: a device cookie past its own limit is trusted no more; its attempts count as a
      // stranger's, toward the account's limit and lock (whose email tells the owner).
      if (outcome.status === 'refused' && outcome.device)
        return once(ctx, { ...subject, trustDevice: false }, verify);
      return outcome;
    },

    /**
     * The whole sign-in succeeded: this browser becomes known to the account (device cookie).
     * From an unknown browser the account's failures and lock are cleared too; from a known one
     * they stay, so the owner signing in does not reopen the account to guessers elsewhere.
     * `clean` (from the outcome) skips the writes when nothing is to clear.
     */
    async completed(ctx: Context, user: User, clean = false): Promise<void> {
      const known = devices.known(ctx, user);
      // A fresh cookie, a fresh count: the known browser's own failures are left behind.
      devices.remember(ctx, user);
      if (clean || known) return;
      await Promise.all([limits.reset('login_account', userKey(user)), lockout.succeeded(user)]);
    },
  };
}

export type SignInGuard = ReturnType<typeof createSignInGuard>;
