import type { IncomingMessage } from 'node:http';
import type { Middleware } from 'koa';
import type Provider from 'oidc-provider';
import { senderKey, type RateLimits } from './rate-limits.ts';
import { refuse } from '../http/too-many.ts';
import { NO_METRICS, type Metrics } from '../metrics/metrics.ts';

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
 * What a token request is counted under. A confidential client proves who it is, so its requests
 * share one budget wherever they come from. A public client (token_endpoint_auth_method none)
 * proves nothing: anyone can make its requests, so a per-client count alone would let one
 * sender refuse every user of the app. Its requests are counted per client and IP: the sender's
 * own address runs out, the app's users elsewhere do not. (Counting only successful grants would
 * not do: anyone can sign in to a public app and refresh in a loop, and bogus requests would go
 * uncounted.)
 */
const MAX_BLOCKED = 10_000;

const publicKey = (clientId: string, ip: string) => `${clientId}@${ip}`;

/**
 * The token endpoint's per-client limit. Only requests in which the client authenticated
 * count, so nobody can spend another client's budget by naming it. The count is shared (Redis
 * or PostgreSQL) and made inside oidc-provider once the client is known, before the response
 * goes out; each process remembers which keys its counts found at the limit, so the check
 * before a request costs no I/O. A client may go one request per process over the limit.
 * Over it: an OAuth error (RFC 6749 §5.2 shape), 429 and Retry-After.
 */
export function createTokenLimit(
  limits: RateLimits,
  metrics: Metrics = NO_METRICS,
  path = '/token',
) {
  const blockedUntil = new Map<string, number>();

  function retryAfter(key: string): number | undefined {
    const until = blockedUntil.get(key);
    if (until === undefined) return undefined;
    if (until > Date.now()) return Math.ceil((until - Date.now()) / 1000);
    blockedUntil.delete(key);
    return undefined;
  }

  function block(key: string, seconds: number): void {
    // One key per public client and address: senders from many addresses must not grow the map
    // without end, so past a size the expired keys go.
    if (blockedUntil.size >= MAX_BLOCKED)
      for (const [old, until] of blockedUntil) if (until <= Date.now()) blockedUntil.delete(old);
    blockedUntil.set(key, Date.now() + seconds * 1000);
  }

  /** In front of oidc-provider: refuses a client (or public client and IP) found at its limit. */
  const refuseBlocked: Middleware = async (ctx, next) => {
    // As oidc-provider's router matches it: any case of ASCII letters, a trailing slash or not.
    if (ctx.method !== 'POST' || ctx.path.replace(/(.)\/$/, '$1').toLowerCase() !== path)
      return next();
    const claimed = blockedUntil.size ? await claimedClientId(ctx.req) : undefined;
    // Whether the client is public is not known yet: either key may be the one blocked.
    const wait =
      claimed && (retryAfter(claimed) || retryAfter(publicKey(claimed, senderKey(ctx.ip))));
    if (!wait) return next();
    metrics.rateLimitRefusals.inc({ limit: 'token_client' });
    refuse(ctx, wait);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = {
      error: 'temporarily_unavailable',
      error_description: `Too many token requests for this client; retry in ${wait} s.`,
    };
  };

  /**
   * Inside oidc-provider: counts a token request once its client is known. A confidential
   * client's counts only when it authenticated (not a 401); a public client's always, per IP.
   */
  function countIn(provider: Provider): void {
    provider.use(async (ctx, next) => {
      await next();
      const client = ctx.oidc?.route === 'token' ? ctx.oidc.client : undefined;
      if (!client) return;
      const isPublic = client.clientAuthMethod === 'none';
      if (!isPublic && ctx.status === 401) return;
      const key = isPublic ? publicKey(client.clientId, senderKey(ctx.ip)) : client.clientId;
      const state = await limits.count('token_client', key);
      if (state && state.remaining <= 0) block(key, state.retryAfterSeconds);
    });
  }

  return { refuseBlocked, countIn };
}
