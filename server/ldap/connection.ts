import type { ConnectionOptions } from 'node:tls';
import { Client, InvalidCredentialsError, ResultCodeError } from 'ldapts';
import type { LdapConfig } from '../../config/ldap.ts';
import { isUnavailable, withDeadline } from '../../adapters/outages.ts';
import { inSpan } from '../tracing/span.ts';

/** The directory did not answer, or answered that it cannot serve (busy, unavailable). */
export class DirectoryUnavailableError extends Error {
  override name = 'DirectoryUnavailableError';
}

// busy (51), unavailable (52), timeLimitExceeded (3): the server, not the request, is the problem.
const SERVER_TROUBLE = new Set([3, 51, 52]);

/** Result code 49: wrong password, unknown DN, and a ppolicy-locked account alike (RFC 4511 §A.2). */
export function isInvalidCredentials(err: unknown): boolean {
  return err instanceof InvalidCredentialsError || (err as { code?: unknown })?.code === 49;
}

// ldapts' own words for a lost connection or an operation that got no answer.
const LDAPTS_CONNECTION_ERROR = /connection timeout|timed out|socket|connection closed/i;

/** Socket, TLS and timeout errors, and the result codes that say "not now". */
export function isConnectionFailure(err: unknown): boolean {
  if (isUnavailable(err)) return true; // this one, a DeadlineError, a network error code
  if (err instanceof ResultCodeError) return SERVER_TROUBLE.has(err.code);
  // Node's socket and TLS errors carry a code: ECONNREFUSED, ETIMEDOUT, CERT_HAS_EXPIRED...
  const { code, message } = (err ?? {}) as { code?: unknown; message?: unknown };
  return typeof code === 'string' || LDAPTS_CONNECTION_ERROR.test(String(message));
}

export type Connection = Client;

function tlsOptions(config: LdapConfig, host: string): ConnectionOptions {
  return {
    ...(config.ca && { ca: config.ca }),
    minVersion: 'TLSv1.2',
    // StartTLS hands tls.connect an existing socket: without the host it would check the
    // certificate against "localhost".
    host,
  };
}

/** Closes a connection without waiting on a directory that may not answer. */
export function closeConnection(client: Connection): void {
  client.unbind().catch(() => undefined);
}

/**
 * A new connection, upgraded with StartTLS when configured (RFC 4513 §3: before any bind, so
 * no password crosses in the clear), and bound as `bind` when given. Closed, and the opening
 * given up, when `signal` aborts first (server/ldap/breaker.ts: the call's deadline).
 */
export async function openConnection(
  config: LdapConfig,
  bind?: { dn: string; password: string },
  signal?: AbortSignal,
): Promise<Connection> {
  const host = new URL(config.url).hostname.replace(/^\[|\]$/g, '');
  const client = new Client({
    url: config.url,
    connectTimeout: config.connectTimeoutMs,
    timeout: config.timeoutMs,
    // ldapts speaks TLS from the start whenever tlsOptions are given, even to an ldap:// URL.
    ...(config.url.startsWith('ldaps:') && { tlsOptions: tlsOptions(config, host) }),
  });
  const abandon = () => closeConnection(client);
  signal?.addEventListener('abort', abandon, { once: true });
  try {
    signal?.throwIfAborted();
    await withDeadline(
      (async () => {
        if (config.startTls) await client.startTLS(tlsOptions(config, host));
        // No DN in the span: a user's bind names the user.
        if (bind) await inSpan('ldap.bind', {}, () => client.bind(bind.dn, bind.password));
      })(),
      config.connectTimeoutMs + config.timeoutMs,
      `connecting to ${config.url}`,
    );
    signal?.throwIfAborted();
    return client;
  } catch (err) {
    closeConnection(client);
    throw err;
  } finally {
    signal?.removeEventListener('abort', abandon);
  }
}
