import type { Middleware } from 'koa';
import proxyaddr from 'proxy-addr';

const FORWARDED = ['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host'] as const;

/** Whether a peer address is one of the named proxies (none are when the list is empty). */
export function trustedPeer(
  trustProxy: readonly string[],
): (address: string | undefined) => boolean {
  if (trustProxy.length === 0) return () => false;
  const trust = proxyaddr.compile([...trustProxy]);
  return (address) => trust(address ?? '', 0);
}

/**
 * Decides once, for this app and oidc-provider's alike, what the forwarded headers may say.
 * From a peer that is not a named proxy they are dropped, so nobody sets their own IP. From a
 * named proxy, X-Forwarded-For is cut down to the one address it vouches for: the last that is
 * not itself a named proxy. Koa (proxy: true) then reads ctx.ip from it. The scheme and host
 * are nobody's to say: issuerOrigin() sets them from the issuer.
 */
export function clientAddress(trustProxy: readonly string[]): Middleware {
  const trust = proxyaddr.compile([...trustProxy]);
  const trusted = trustedPeer(trustProxy);
  return async (ctx, next) => {
    const { headers } = ctx.req;
    if (trusted(ctx.req.socket.remoteAddress)) {
      headers['x-forwarded-for'] = proxyaddr(ctx.req, trust);
    } else {
      for (const name of FORWARDED) delete headers[name];
    }
    await next();
  };
}
