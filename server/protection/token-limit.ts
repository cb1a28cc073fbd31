import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import type { Middleware } from 'koa';
import type { RateLimits } from './rate-limits.ts';
import { refuse } from './too-many.ts';

/** oidc-provider refuses token request bodies over 56 KiB; nothing larger is worth reading. */
const BODY_LIMIT = 56 * 1024;

/**
 * Reads a form body and puts it back on the stream, so that oidc-provider, which parses the
 * request after us, reads it as if untouched. Only bodies with a Content-Length are read.
 */
async function peekBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const length = Number(req.headers['content-length']);
  if (!Number.isInteger(length) || length <= 0 || length > BODY_LIMIT) return undefined;
  const chunks: Buffer[] = [];
  let received = 0;
  while (received < length && !req.readableEnded && !req.destroyed) {
    const chunk = req.read() as Buffer | null;
    if (chunk) {
      chunks.push(chunk);
      received += chunk.length;
    } else {
      await Promise.race([once(req, 'readable'), once(req, 'end'), once(req, 'close')]);
    }
  }
  const body = Buffer.concat(chunks);
  if (body.length) req.unshift(body);
  return body;
}

/** The client id a token request names: HTTP Basic (client_secret_basic) or the form. */
async function claimedClientId(req: IncomingMessage): Promise<string | undefined> {
  const auth = req.headers.authorization ?? '';
  if (/^basic /i.test(auth)) {
    const decoded = Buffer.from(auth.slice(6).trim(), 'base64').toString();
    const id = decoded.slice(0, decoded.indexOf(':'));
    // RFC 6749 §2.3.1: the id is form-encoded inside Basic.
    try {
      return decodeURIComponent(id.replace(/\+/g, ' ')) || undefined;
    } catch {
      return undefined;
    }
  }
  if (!/^application\/x-www-form-urlencoded/i.test(req.headers['content-type'] ?? ''))
    return undefined;
  const body = await peekBody(req);
  return body ? new URLSearchParams(body.toString()).get('client_id') || undefined : undefined;
}

/**
 * The token endpoint's per-client limit, checked before oidc-provider sees the request. It
 * keys on the client id the request names: authentication comes later, inside oidc-provider.
 * The refusal is an OAuth error (RFC 6749 §5.2 shape) with 429 and Retry-After.
 */
export function tokenEndpointLimit(limits: RateLimits, path = '/token'): Middleware {
  return async (ctx, next) => {
    if (ctx.method !== 'POST' || ctx.path !== path) return next();
    const clientId = await claimedClientId(ctx.req);
    if (clientId) {
      const verdict = await limits.consume(['token_client', clientId]);
      if (!verdict.ok) {
        refuse(ctx, verdict.retryAfterSeconds);
        ctx.set('Cache-Control', 'no-store');
        ctx.body = {
          error: 'temporarily_unavailable',
          error_description: `Too many token requests for this client; retry in ${verdict.retryAfterSeconds} s.`,
        };
        return;
      }
    }
    await next();
  };
}
