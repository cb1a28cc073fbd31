import type { IncomingMessage } from 'node:http';
import type { Context, Middleware } from 'koa';
import type { Metrics } from './metrics.ts';

/**
 * The route template a request matched, for the HTTP metrics and span names: never the raw path, whose ids
 * would make a series per interaction. oidc-provider answers requests with a Koa context of its
 * own, so its router's match is passed back by the request object (noteProviderRoute).
 */
const providerRoutes = new WeakMap<IncomingMessage, string>();

export const routeOf = (ctx: Context): string =>
  providerRoutes.get(ctx.req) ??
  (typeof ctx._matchedRoute === 'string' ? ctx._matchedRoute : 'other');

/** Times every request, labelled by route template and status class, once the response ends. */
export function httpMetrics(metrics: Metrics): Middleware {
  return async (ctx, next) => {
    const end = metrics.httpDuration.startTimer();
    ctx.res.once('close', () =>
      end({ route: routeOf(ctx), status_class: `${Math.floor(ctx.res.statusCode / 100)}xx` }),
    );
    await next();
  };
}

/** Provider middleware: tells httpMetrics which of oidc-provider's routes answered. */
export const noteProviderRoute: Middleware = async (ctx, next) => {
  try {
    await next();
  } finally {
    if (typeof ctx._matchedRoute === 'string') providerRoutes.set(ctx.req, ctx._matchedRoute);
  }
};
