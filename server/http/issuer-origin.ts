import type { Middleware } from 'koa';

/**
 * Every URL this server publishes or emails (discovery, jwks_uri, the end_session form, links)
 * derives from the issuer alone. The request's Host, X-Forwarded-Host and X-Forwarded-Proto are
 * set to the issuer's before anything reads them (our routers, oidc-provider's urlFor, which
 * builds on ctx.href), so a forged header, even one a trusted proxy passes on, cannot point an
 * endpoint elsewhere. An issuer with a path (served behind a proxy that strips it) keeps it:
 * oidc-provider takes its mount path from req.originalUrl.
 */
export function issuerOrigin(issuer: string): Middleware {
  const { host, protocol, pathname } = new URL(issuer);
  const scheme = protocol.slice(0, -1);
  const mountPath = pathname.replace(/\/$/, '');
  return async (ctx, next) => {
    const req = ctx.req as typeof ctx.req & { originalUrl?: string };
    req.headers.host = host;
    delete req.headers['x-forwarded-host'];
    req.headers['x-forwarded-proto'] = scheme;
    if (mountPath) req.originalUrl = `${mountPath}${req.url}`;
    await next();
  };
}
