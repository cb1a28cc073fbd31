import { AsyncLocalStorage } from 'node:async_hooks';
import type { Middleware } from 'koa';
import type { StorageAdapter } from './types.ts';
import { RETRY_AFTER_SECONDS, UNAVAILABLE_DESCRIPTION } from './outages.ts';

/** Refresh tokens a token request has rotated, spent only once its response is ready. */
const rotated = new AsyncLocalStorage<(() => Promise<void>)[]>();

/** The presented refresh token was spent by another request meanwhile, outside the reuse grace. */
class SpentMeanwhile extends Error {}

/**
 * oidc-provider spends (consumes) a refresh token before it stores the new one and the access
 * token. If one of those writes then fails, the client keeps the old token, and its retry
 * would be taken for reuse by a thief, revoking the grant: the user is signed out by our own
 * failure. Inside a token request the consume is therefore held back (see
 * spendRotatedTokensOnSuccess); anywhere else it happens at once.
 *
 * When it is done it must be the first, as oidc-provider's own read-then-consume is not atomic:
 * of two requests racing with one token (a thief and the client), one finds it spent by the
 * other, and unless the reuse grace (`find` through withReuseGrace) still covers that, the
 * rotation fails as reuse. `budgetMs` bounds the consume in the database itself.
 */
export function withDeferredConsume<A extends StorageAdapter>(inner: A, budgetMs?: number): A {
  const spend = async (id: string) => {
    const first = await inner.consumeOnce(id, budgetMs ? Date.now() + budgetMs : undefined);
    if (!first && (await inner.find(id))?.consumed) throw new SpentMeanwhile();
  };
  return Object.assign(Object.create(inner) as A, {
    async consume(id: string) {
      const held = rotated.getStore();
      if (held) held.push(() => spend(id));
      else await inner.consume(id);
    },
  });
}

type TokenContext = Parameters<Middleware>[0] & {
  oidc?: { entities?: { RefreshToken?: { grantId?: string; destroy(): Promise<void> } } };
};

/**
 * Provider middleware around the token endpoint: a rotation is all or nothing. The presented
 * refresh token is spent only when everything else succeeded and the answer is a 200. If that
 * last write fails, the new refresh token (never handed out) is dropped, the client is told
 * `temporarily_unavailable`, and the token it holds still works. If another request spent it
 * meanwhile, this is reuse (RFC 9700 §4.14.2): the grant is revoked, as oidc-provider does.
 */
export function spendRotatedTokensOnSuccess(
  revokeGrant: (grantId: string) => Promise<void>,
  onReuse: () => void = () => undefined,
): Middleware {
  return async (ctx: TokenContext, next) => {
    // Every POST, not a path compared here: oidc-provider's router also takes /Token/ for
    // /token. Only the token endpoint consumes refresh tokens, so nothing else is held.
    if (ctx.method !== 'POST') return next();
    const held: (() => Promise<void>)[] = [];
    await rotated.run(held, next);
    if (!held.length || ctx.status !== 200) return;
    const issued = ctx.oidc?.entities?.RefreshToken;
    try {
      await Promise.all(held.map((spend) => spend()));
    } catch (err) {
      await issued?.destroy().catch(() => undefined);
      ctx.set('Cache-Control', 'no-store');
      if (err instanceof SpentMeanwhile) {
        onReuse();
        if (issued?.grantId) await revokeGrant(issued.grantId).catch(() => undefined);
        ctx.state.log?.warn('refresh token reused by a concurrent request; grant revoked');
        ctx.status = 400;
        ctx.body = { error: 'invalid_grant', error_description: 'refresh token already used' };
        return;
      }
      ctx.state.log?.warn({ err }, 'refresh token rotation not completed; old token kept');
      ctx.status = 503;
      ctx.set('Retry-After', String(RETRY_AFTER_SECONDS));
      ctx.body = { error: 'temporarily_unavailable', error_description: UNAVAILABLE_DESCRIPTION };
    }
  };
}
