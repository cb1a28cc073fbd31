import { AsyncLocalStorage } from 'node:async_hooks';
import type { Middleware } from 'koa';
import type { StorageAdapter } from './types.ts';
import { RETRY_AFTER_SECONDS, UNAVAILABLE_DESCRIPTION } from './outages.ts';

/** Refresh tokens a token request has rotated, spent only once its response is ready. */
const rotated = new AsyncLocalStorage<(() => Promise<void>)[]>();

/**
 * oidc-provider spends (consumes) a refresh token before it stores the new one and the access
 * token. If one of those writes then fails, the client keeps the old token, and its retry
 * would be taken for reuse by a thief, revoking the grant: the user is signed out by our own
 * failure. Inside a token request the consume is therefore held back (see
 * spendRotatedTokensOnSuccess); anywhere else it happens at once.
 */
export function withDeferredConsume<A extends StorageAdapter>(inner: A): A {
  return Object.assign(Object.create(inner) as A, {
    async consume(id: string) {
      const held = rotated.getStore();
      if (held) held.push(() => inner.consume(id));
      else await inner.consume(id);
    },
  });
}

type TokenContext = Parameters<Middleware>[0] & {
  oidc?: { entities?: { RefreshToken?: { destroy(): Promise<void> } } };
};

/**
 * Provider middleware around the token endpoint: a rotation is all or nothing. The presented
 * refresh token is spent only when everything else succeeded and the answer is a 200; if that
 * last write fails, the new refresh token (never handed out) is dropped, the client is told
 * `temporarily_unavailable`, and the token it holds still works.
 */
export function spendRotatedTokensOnSuccess(): Middleware {
  return async (ctx: TokenContext, next) => {
    // Every POST, not a path compared here: oidc-provider's router also takes /Token/ for
    // /token. Only the token endpoint consumes refresh tokens, so nothing else is held.
    if (ctx.method !== 'POST') return next();
    const held: (() => Promise<void>)[] = [];
    await rotated.run(held, next);
    if (!held.length || ctx.status !== 200) return;
    try {
      await Promise.all(held.map((spend) => spend()));
    } catch (err) {
      await ctx.oidc?.entities?.RefreshToken?.destroy().catch(() => undefined);
      ctx.state.log?.warn({ err }, 'refresh token rotation not completed; old token kept');
      ctx.status = 503;
      ctx.set('Retry-After', String(RETRY_AFTER_SECONDS));
      ctx.body = { error: 'temporarily_unavailable', error_description: UNAVAILABLE_DESCRIPTION };
    }
  };
}
