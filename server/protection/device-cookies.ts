import { createHash, createHmac, randomBytes } from 'node:crypto';
import type { Context } from 'koa';
import { constantTimeEqual } from '../security/constant-time.ts';

/**
 * OWASP's device cookies ("Slow Down Online Guessing Attacks with Device Cookies"): a browser
 * that completed a sign-in to an account gets a long-lived cookie bound to that account; its
 * later attempts are counted per cookie, apart from the account's, so guesses from elsewhere
 * cannot keep the owner's known browser out. The value is `<nonce>.<HMAC(account, nonce)>`
 * under the first cookie key; any of COOKIE_KEYS verifies, so keys can rotate.
 */
export function createDeviceCookies(cookieKeys: string[], days: number) {
  const sign = (key: string, userId: string, nonce: string) =>
    createHmac('sha256', key).update(`device:${userId}:${nonce}`).digest('base64url');
  // One cookie per account the browser signed in to; the name does not show the account id.
  const nameOf = (userId: string) =>
    `lk_device_${createHash('sha256').update(userId).digest('base64url').slice(0, 16)}`;

  return {
    /** The nonce of this browser's valid device cookie for the account, or undefined. */
    known(ctx: Context, userId: string): string | undefined {
      const [nonce, signature, extra] = (ctx.cookies.get(nameOf(userId)) ?? '').split('.');
      if (!nonce || !signature || extra !== undefined) return undefined;
      const valid = cookieKeys.some((key) =>
        constantTimeEqual(sign(key, userId, nonce), signature),
      );
      return valid ? nonce : undefined;
    },

    /** Marks this browser as known to the account (a fresh nonce: a fresh count). */
    remember(ctx: Context, userId: string): void {
      const nonce = randomBytes(16).toString('base64url');
      ctx.cookies.set(nameOf(userId), `${nonce}.${sign(cookieKeys[0]!, userId, nonce)}`, {
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
