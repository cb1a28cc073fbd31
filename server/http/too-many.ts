import type { Context } from 'koa';
import type { Views } from '../views.ts';

/** "Too many attempts. Wait about 4 minutes, then try again." */
export function waitMessage(retryAfterSeconds: number): string {
  const minutes = Math.ceil(retryAfterSeconds / 60);
  const wait =
    retryAfterSeconds < 60
      ? `${retryAfterSeconds} second${retryAfterSeconds === 1 ? '' : 's'}`
      : `${minutes} minute${minutes === 1 ? '' : 's'}`;
  return `Too many attempts. Wait about ${wait}, then try again.`;
}

/** Marks the response 429 with Retry-After (RFC 9110 §10.2.3); the caller writes the body. */
export function refuse(ctx: Context, retryAfterSeconds: number): void {
  ctx.status = 429;
  ctx.set('Retry-After', String(retryAfterSeconds));
}

/** The friendly page for a form that hit a rate limit. */
export function tooManyPage(views: Views, ctx: Context, retryAfterSeconds: number): void {
  refuse(ctx, retryAfterSeconds);
  views.render(
    ctx,
    'too-many',
    { title: 'Please wait a moment', message: waitMessage(retryAfterSeconds) },
    429,
  );
}
