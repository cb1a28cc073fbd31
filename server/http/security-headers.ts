import type { Middleware } from 'koa';

// Set before the provider runs: oidc-provider adds the hash of its one inline script
// (form_post) to an existing script-src. No form-action: Chrome applies it to the redirects
// that follow a form post, which would block the redirect back to the relying party.
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'";

export function securityHeaders({ hsts }: { hsts: boolean }): Middleware {
  return async (ctx, next) => {
    ctx.set('Content-Security-Policy', CSP);
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('Referrer-Policy', 'no-referrer');
    ctx.set('X-Frame-Options', 'DENY');
    ctx.set('Cross-Origin-Opener-Policy', 'same-origin');
    if (hsts) ctx.set('Strict-Transport-Security', 'max-age=31536000; includeSubDomains');
    await next();
  };
}
