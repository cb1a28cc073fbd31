import { createHash, createHmac, randomBytes } from 'node:crypto';
import type { Context } from 'koa';
import { signOutStamp } from '../users/session-rule.ts';
import type { User } from '../users/store.ts';
import { constantTimeEqual } from '../security/constant-time.ts';

type DeviceOwner = Pick<User, 'id' | 'sessions_valid_from'>;

/**
 * OWASP's device cookies ("Slow Down Online Guessing Attacks with Device Cookies"): a browser
 * that completed a sign-in to an account gets a long-lived cookie bound to that account; its
 * later attempts are counted per cookie, apart from the account's, so guesses from elsewhere
 * cannot keep the owner's known browser out. The value is `<nonce>.<HMAC(account, stamp, nonce)>`
 * under the first cookie key; any of COOKIE_KEYS verifies, so keys can rotate. The stamp changes
 * when the account is signed out everywhere (a password change or reset, "this wasn't me"), so
 * a browser that knew the old password, a thief's included, is a stranger again.
 */
export function createDeviceCookies(cookieKeys: string[], days: number) {
  const sign = (key: string, user: DeviceOwner, nonce: string) =>
    createHmac('sha256', key)
      .update(`device:${user.id}:${signOutStamp(user)}:${nonce}`)
      .digest('base64url');
  // One cookie per account the browser signed in to; the name does not show the account id.
  const nameOf = (userId: string) =>
    `lk_device_${createHash('sha256').update(userId).digest('base64url').slice(0, 16)}`;

  return {
    /** The nonce of this browser's valid device cookie for the account, or undefined. */
    known(ctx: Context, user: DeviceOwner): string | undefined {
      const [nonce, signature, extra] = (ctx.cookies.get(nameOf(user.id)) ?? '').split('.');
      if (!nonce || !signature || extra !== undefined) return undefined;
      const valid = cookieKeys.some((key) => constantTimeEqual(sign(key, user, nonce), signature));
      return valid ? nonce : undefined;
    },

    /** Marks this browser as known to the account (a fresh nonce: a fresh count). */
    remember(ctx: Context, user: DeviceOwner): void {
      const nonce = randomBytes(16).toString('base64url');
      ctx.cookies.set(nameOf(user.id), `${nonce}.${sign(cookieKeys[0]!, user, nonce)}`, {
        httpOnly: true,
        sameSite: 'lax',
        secure: ctx.secure,
        path: '/',
        maxAge: days * 86_400_000,
        overwrite: true,
      });
    },
  };
}

export type DeviceCookies = ReturnType<typeof createDeviceCookies>;
