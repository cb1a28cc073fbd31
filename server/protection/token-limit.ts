import type { IncomingMessage } from 'node:http';
import type { Middleware } from 'koa';
import type Provider from 'oidc-provider';
import type { RateLimits } from './rate-limits.ts';
import { refuse } from './too-many.ts';

/** oidc-provider refuses token request bodies over 56 KiB; no more than that is read here. */
const BODY_LIMIT = 56 * 1024;

/**
 * Reads a request body (up to BODY_LIMIT, with or without Content-Length) and puts it back on
 * the stream before its end is signalled, so that oidc-provider, which parses the request after
 * us, reads it as if untouched. Every listener added here is removed again.
 */
function peekBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = () => {
      req.off('readable', onReadable);
      req.off('end', finish);
      req.off('close', finish);
      req.off('error', finish);
      const body = Buffer.concat(chunks);
      // 'end' waits for an empty buffer: pushed back now, the body is there for the next reader.
      if (body.length && !req.readableEnded) req.unshift(body);
      resolve(body);
    };
    function onReadable() {
      let chunk: Buffer | null;
      while ((chunk = req.read() as Buffer | null) !== null) {
        chunks.push(chunk);
        size += chunk.length;
        if (size > BODY_LIMIT) return finish();
      }
      if (req.complete) finish();
    }
    req.on('readable', onReadable);
    req.on('end', finish);
    req.on('close', finish);
    req.on('error', finish);
    onReadable();
  });
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
  return new URLSearchParams(body.toString()).get('client_id') || undefined;
}

/**
 * The token endpoint's per-client limit. Only requests in which the client authenticated
 * count, so nobody can spend another client's budget by naming it. The count is shared (Redis
 * or PostgreSQL) and made inside oidc-provider once the client is known, before the response
 * goes out; each process remembers which clients its counts found at the limit, so the check
 * before a request costs no I/O. A client may go one request per process over the limit.
 * Over it: an OAuth error (RFC 6749 §5.2 shape), 429 and Retry-After.
 */
export function createTokenLimit(limits: RateLimits, path = '/token') {
  const blockedUntil = new Map<string, number>();

  function retryAfter(clientId: string): number | undefined {
    const until = blockedUntil.get(clientId);
    if (until === undefined) return undefined;
    if (until > Date.now()) return Math.ceil((until - Date.now()) / 1000);
    blockedUntil.delete(clientId);
    return undefined;
  }

  /** In front of oidc-provider: refuses a client this process found at its limit. */
  const refuseBlocked: Middleware = async (ctx, next) => {
    if (ctx.method !== 'POST' || ctx.path !== path) return next();
    const claimed = blockedUntil.size ? await claimedClientId(ctx.req) : undefined;
    const wait = claimed && retryAfter(claimed);
    if (!wait) return next();
    refuse(ctx, wait);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = {
      error: 'temporarily_unavailable',
      error_description: `Too many token requests for this client; retry in ${wait} s.`,
    };
  };

  /** Inside oidc-provider: counts a token request whose client authenticated (not a 401). */
  function countIn(provider: Provider): void {
    provider.use(async (ctx, next) => {
      await next();
      const clientId = ctx.oidc?.route === 'token' ? ctx.oidc.client?.clientId : undefined;
      if (!clientId || ctx.status === 401) return;
      const state = await limits.count('token_client', clientId);
      if (state && state.remaining <= 0)
        blockedUntil.set(clientId, Date.now() + state.retryAfterSeconds * 1000);
    });
  }

  return { refuseBlocked, countIn };
}
