import type Router from '@koa/router';
import type { Middleware } from 'koa';

/** A path's first segment, as the routers match paths: in any case. */
const firstSegment = (path: string) => (path.split('/', 2)[1] ?? '').toLowerCase();

/**
 * Our routers, tried in order, but only for a path whose first segment one of them has: the
 * protocol's requests (/token, /auth, /jwks...) go on to the provider without a route match in
 * each router (a few percent of a token request's CPU).
 */
export function ownRoutes(routers: Router[]): Middleware {
  const segments = new Set<string>();
  for (const router of routers)
    for (const layer of router.stack) {
      const segment = typeof layer.path === 'string' ? firstSegment(layer.path) : '';
      // A pattern there (a parameter, a wildcard) could match any path: it must be literal.
      if (!/^[\w.-]+$/.test(segment))
        throw new Error(`route ${layer.path}: the first segment must be literal`);
      segments.add(segment);
    }
  const routes = routers.map((router) => router.routes() as Middleware);
  return (ctx, next) => {
    if (!segments.has(firstSegment(ctx.path))) return next();
    const step = (i: number): Promise<unknown> =>
      i === routes.length ? next() : Promise.resolve(routes[i]!(ctx, () => step(i + 1)));
    return step(0);
  };
}
