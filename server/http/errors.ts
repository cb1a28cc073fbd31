import type { Middleware } from 'koa';
import {
  isUnavailable,
  RETRY_AFTER_SECONDS,
  UNAVAILABLE_DESCRIPTION,
} from '../../adapters/outages.ts';
import type { Views } from '../views.ts';
import { RESUBMIT_FIELD, type Resubmit } from './form.ts';

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
            // A form that met the outage comes back filled in (server/http/form.ts).
            ...(unavailable &&
              ctx.state.resubmit && {
                resubmit: {
                  action: ctx.originalUrl,
                  fields: { ...(ctx.state.resubmit as Resubmit), [RESUBMIT_FIELD]: '1' },
                },
              }),
          },
          status,
        );
      }
    }
  };
}

/**
 * An outage met where oidc-provider does not ask us (its own reads) becomes a server_error; its
 * answer is turned into the 503 `temporarily_unavailable` it should have been.
 */
export function providerOutagePages(views: Views): Middleware {
  return async (ctx, next) => {
    await next();
    if (!ctx.state.unavailable || ctx.status !== 500) return;
    ctx.set('Retry-After', String(RETRY_AFTER_SECONDS));
    if (ctx.response.is('html')) {
      views.render(
        ctx,
        'error',
        { title: 'Try again in a moment', description: UNAVAILABLE_DESCRIPTION },
        503,
      );
      return;
    }
    ctx.status = 503;
    ctx.body = { error: 'temporarily_unavailable', error_description: UNAVAILABLE_DESCRIPTION };
  };
}
