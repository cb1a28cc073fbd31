import { errors } from 'oidc-provider';

/** What a client is told to wait before trying again after a 503 (RFC 9110 §10.2.3), in seconds. */
export const RETRY_AFTER_SECONDS = 5;

/** What the client or user is told while a dependency is out. */
export const UNAVAILABLE_DESCRIPTION =
  'The service is briefly unavailable; try again in a few seconds.';

/** An operation on a dependency that did not finish within its deadline. */
export class DeadlineError extends Error {
  constructor(what: string, ms: number) {
    super(`${what}: no answer within ${ms} ms`);
    this.name = 'DeadlineError';
  }
}

// PostgreSQL SQLSTATEs of a server that is going away, starting, full or out of reach:
// class 08 (connection exception), 57P01-03 (shutdown, crash, cannot connect now), 53300 (too
// many connections), 57014 (a statement cancelled by its timeout).
const PG_UNAVAILABLE = /^(08|57P0[123]$|53300$|57014$)/;
const NET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);
const UNAVAILABLE_NAMES = new Set([
  'DeadlineError',
  'MaxRetriesPerRequestError', // ioredis gave up on a command while reconnecting
  'ClusterAllFailedError',
  'KnexTimeoutError', // no pool connection within acquireConnectionTimeout
  'DirectoryUnavailableError', // server/ldap/connection.ts: LDAP down, hung, or left alone for now
]);
const UNAVAILABLE_MESSAGES = [
  /^Command timed out/, // ioredis commandTimeout
  /^Connection is closed/,
  /enableOfflineQueue options is false/, // ioredis while disconnected (server or Cluster)
  /^(LOADING|READONLY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN) /, // Redis starting, failing over
  /None of startup nodes is available/,
  // pg, which knex prefixes with the statement: the server went away, or query_timeout
  /Connection terminated/,
  /Query read timeout/,
  /timeout exceeded when trying to connect/,
];

/**
 * Whether an error means that PostgreSQL, Redis or the directory could not be reached or did
 * not answer in time (as opposed to a bug or bad input): such a request answers 503, try again shortly.
 */
// SQLSTATE classes 22 (data exception: a NUL in text or JSON, say) and 23 (integrity: a
// duplicate key): a row the database will never take as it is, however often it is tried.
const PG_REFUSED_ROW = /^2[23]/;

/** Whether PostgreSQL refused the row itself, rather than being out of reach. */
export function isRefusedRow(err: unknown): boolean {
  return PG_REFUSED_ROW.test(String((err as { code?: unknown } | undefined)?.code ?? ''));
}

export function isUnavailable(err: unknown): boolean {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 5; depth++) {
    const { name, code, message, cause } = e as {
      name?: string;
      code?: unknown;
      message?: string;
      cause?: unknown;
    };
    if (e instanceof errors.TemporarilyUnavailable) return true;
    if (name && UNAVAILABLE_NAMES.has(name)) return true;
    if (typeof code === 'string' && (NET_CODES.has(code) || PG_UNAVAILABLE.test(code))) return true;
    if (message && UNAVAILABLE_MESSAGES.some((pattern) => pattern.test(message))) return true;
    e = cause;
  }
  return false;
}

/**
 * The OAuth error for a dependency outage: `temporarily_unavailable` (RFC 6749 §4.1.2.1; the
 * token endpoint answers it too) with HTTP 503. oidc-provider shows its description and, at the
 * authorization endpoint, sends it to the client's redirect URI.
 */
export function temporarilyUnavailable(cause?: unknown): Error {
  const err = new errors.TemporarilyUnavailable(UNAVAILABLE_DESCRIPTION, { cause });
  return Object.assign(err, { status: 503, statusCode: 503, expose: true });
}

/**
 * `fn`, except that an outage it meets is thrown as temporarilyUnavailable: for the functions
 * oidc-provider calls (findAccount, loadExistingGrant, storage), so that it answers 503 or
 * redirects with `temporarily_unavailable` instead of `server_error`.
 */
export function answeringOutagesAsOAuth<A extends unknown[], R>(
  fn: (...args: A) => Promise<R>,
): (...args: A) => Promise<R> {
  return async (...args) => {
    try {
      return await fn(...args);
    } catch (err) {
      throw isUnavailable(err) ? temporarilyUnavailable(err) : err;
    }
  };
}

/** Rejects with a DeadlineError when `promise` takes longer than `ms`; the timer never holds the process. */
export function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineError(what, ms)), ms);
    timer.unref();
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/**
 * A store that cannot be reached fails as oidc-provider's `temporarily_unavailable` (503) rather
 * than a server_error: the client and the user are told to try again, and nothing they hold is
 * lost. How long a call may take is bounded where it can be enforced, in the clients themselves
 * (pg's connection, query and statement timeouts; ioredis' command timeout and no offline
 * queue: server/db.ts, server/server.ts), so this adds no timer to every call.
 */
export function answeringOutages<A extends object>(inner: A): A {
  // One wrapper per method, made on first use: the hot paths allocate nothing per call.
  const wrapped = new Map<PropertyKey, unknown>();
  return new Proxy(inner, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== 'function') return value;
      let guarded = wrapped.get(property);
      if (!guarded) {
        const method = value as (...args: unknown[]) => Promise<unknown>;
        guarded = answeringOutagesAsOAuth((...args: unknown[]) => method.apply(target, args));
        wrapped.set(property, guarded);
      }
      return guarded;
    },
  });
}
