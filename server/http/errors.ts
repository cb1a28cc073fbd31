import type { Middleware } from 'koa';
import { isUnavailable, RETRY_AFTER_SECONDS, UNAVAILABLE_DESCRIPTION } from '../unavailable.ts';
import type { Views } from '../views.ts';

/**
 * Errors from our own routes: an exposed error (status + expose, as koa's own) shows its message;
 * anything else is logged and shown as a plain 500 with the request id, never a stack trace.
 * An outage of PostgreSQL or Redis is a 503 that says to try again shortly (with Retry-After),
 * not an error of ours. JSON callers get application/problem+json (RFC 9457).
 */
export function errorPages(views: Views): Middleware {
  return async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      const e = err as { status?: number; expose?: boolean; message?: string };
      const unavailable = isUnavailable(err);
      const status = unavailable ? 503 : e.expose && e.status ? e.status : 500;
      const detail = unavailable
        ? UNAVAILABLE_DESCRIPTION
        : status < 500 && e.message
          ? e.message
          : 'An unexpected error occurred.';
      if (unavailable) {
        ctx.set('Retry-After', String(RETRY_AFTER_SECONDS));
        ctx.state.log?.warn({ error: (err as Error).message }, 'dependency unavailable');
      } else if (status >= 500) ctx.state.log?.error({ err }, 'unhandled error');
      if (ctx.accepts('html', 'json') === 'json') {
        ctx.status = status;
        ctx.type = 'application/problem+json';
        ctx.body = { type: 'about:blank', title: detail, status, requestId: ctx.state.requestId };
      } else {
        views.render(
          ctx,
          'error',
          {
            title: unavailable ? 'Try again in a moment' : 'Something went wrong',
            description: detail,
            requestId: ctx.state.requestId,
          },
          status,
        );
      }
    }
  };
}
