import {
  BrokenCircuitError,
  circuitBreaker,
  CircuitState,
  ConsecutiveBreaker,
  handleWhen,
  TaskCancelledError,
  timeout,
  TimeoutStrategy,
} from 'cockatiel';
import type { LdapConfig } from '../../config/ldap.ts';
import type { Logger } from '../log.ts';
import { DirectoryUnavailableError, isConnectionFailure } from './connection.ts';

/** Directory calls failing in a row (no answer, refused, busy) before it is left alone. */
export const FAILURES_BEFORE_OPEN = 3;
/** How long the directory is left alone before one call goes through to see if it is back. */
export const PROBE_AFTER_MS = 2000;

/**
 * Runs one call to the directory (a search on a pooled connection, a user's bind) within a
 * deadline, aborting `signal` when it passes: the call closes what it opened. `unbounded`: no
 * deadline for the whole call (a sync reads many pages; each operation has LDAP_TIMEOUT_MS).
 */
export type DirectoryGuard = <T>(
  call: (signal: AbortSignal) => Promise<T>,
  options?: { unbounded?: boolean },
) => Promise<T>;

/**
 * The one way this process calls the directory: each call bounded by the directory's timeouts
 * (one connect and one operation), and a circuit breaker over them all. After a few calls in a
 * row fail as an outage, calls fail at once for a moment, without touching the network, so a
 * down or hung directory holds no sign-in slot and no pool connection; then one call probes
 * it, and its success closes the circuit. Calls during the probe fail at once too: cockatiel
 * would have them wait for it, up to the whole deadline when the directory hangs.
 * Wrong passwords and other answers of a working directory count as successes.
 */
export function createDirectoryGuard(
  config: Pick<LdapConfig, 'connectTimeoutMs' | 'timeoutMs'>,
  log: Logger,
): DirectoryGuard {
  const ms = config.connectTimeoutMs + config.timeoutMs;
  const breaker = circuitBreaker(handleWhen(isConnectionFailure), {
    halfOpenAfter: PROBE_AFTER_MS,
    breaker: new ConsecutiveBreaker(FAILURES_BEFORE_OPEN),
  });
  // The call's signal stays unaborted when it returns: what it returns (a connection) is kept.
  const deadline = timeout(ms, { strategy: TimeoutStrategy.Aggressive, abortOnReturn: false });
  breaker.onBreak(() =>
    log.warn({ probeAfterMs: PROBE_AFTER_MS }, 'directory unavailable: not asked for a moment'),
  );
  breaker.onReset(() => log.info('directory answers again'));

  const bounded = <T>(call: (signal: AbortSignal) => Promise<T>) =>
    deadline
      .execute(({ signal }) => call(signal))
      .catch((err: unknown) => {
        throw err instanceof TaskCancelledError
          ? new DirectoryUnavailableError(`no answer from the directory within ${ms} ms`)
          : err;
      });

  return async (call, { unbounded = false } = {}) => {
    if (breaker.state === CircuitState.HalfOpen)
      throw new DirectoryUnavailableError('the directory is being probed: not asked for now');
    try {
      return await breaker.execute(() =>
        unbounded ? call(new AbortController().signal) : bounded(call),
      );
    } catch (err) {
      if (err instanceof BrokenCircuitError)
        throw new DirectoryUnavailableError('the directory failed repeatedly: not asked for now');
      throw err;
    }
  };
}
