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

/** Token requests whose client authenticated, by request: set by oidc-provider's events. */
const authenticated = new WeakMap<IncomingMessage, string>();

/**
 * The token endpoint's per-client limit. Only requests that authenticated as the client count,
 * once answered, so nobody can spend another client's budget by naming it. The count is shared
 * (Redis or PostgreSQL); each process remembers which clients its last count found at the
 * limit, so the check before a request costs no I/O and a client goes at most one request per
 * process over. Over the limit: an OAuth error (RFC 6749 §5.2 shape), 429 and Retry-After.
 */
export function tokenEndpointLimit(limits: RateLimits, path = '/token'): Middleware {
  const blockedUntil = new Map<string, number>();

  function retryAfter(clientId: string): number | undefined {
    const until = blockedUntil.get(clientId);
    if (until === undefined) return undefined;
    if (until > Date.now()) return Math.ceil((until - Date.now()) / 1000);
    blockedUntil.delete(clientId);
    return undefined;
  }

  return async (ctx, next) => {
    if (ctx.method !== 'POST' || ctx.path !== path) return next();
    const claimed = blockedUntil.size ? await claimedClientId(ctx.req) : undefined;
    const wait = claimed && retryAfter(claimed);
    if (wait) {
      refuse(ctx, wait);
      ctx.set('Cache-Control', 'no-store');
      ctx.body = {
        error: 'temporarily_unavailable',
        error_description: `Too many token requests for this client; retry in ${wait} s.`,
      };
      return;
    }
    await next();
    // The response has gone out: counting costs the client no time.
    const counted = authenticated.get(ctx.req);
    const state = counted && (await limits.count('token_client', counted));
    if (state && state.remaining <= 0)
      blockedUntil.set(counted, Date.now() + state.retryAfterSeconds * 1000);
  };
}

/** Marks token requests of an authenticated client: a success, or an error after authentication. */
export function countTokenRequests(provider: Provider): void {
  const mark = (req: IncomingMessage, clientId: string | undefined) => {
    if (clientId) authenticated.set(req, clientId);
  };
  provider.on('grant.success', (ctx) => mark(ctx.req, ctx.oidc.client?.clientId));
  provider.on('grant.error', (ctx, err) => {
    if ((err as { error?: string }).error !== 'invalid_client')
      mark(ctx.req, ctx.oidc.client?.clientId);
  });
}
