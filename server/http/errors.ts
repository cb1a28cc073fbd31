import type { Middleware } from 'koa';
import type { Views } from '../views.ts';

/**
 * Errors from our own routes: an exposed error (status + expose, as koa's own) shows its message;
 * anything else is logged and shown as a plain 500 with the request id, never a stack trace.
 * JSON callers get application/problem+json (RFC 9457).
 */
export function errorPages(views: Views): Middleware {
  return async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      const e = err as { status?: number; expose?: boolean; message?: string };
      const status = e.expose && e.status ? e.status : 500;
      const detail = status < 500 && e.message ? e.message : 'An unexpected error occurred.';
      if (status >= 500) ctx.state.log?.error({ err }, 'unhandled error');
      if (ctx.accepts('html', 'json') === 'json') {
        ctx.status = status;
        ctx.type = 'application/problem+json';
        ctx.body = { type: 'about:blank', title: detail, status, requestId: ctx.state.requestId };
      } else {
        views.render(
          ctx,
          'error',
          { title: 'Something went wrong', description: detail, requestId: ctx.state.requestId },
          status,
        );
      }
    }
  };
}
