import { setTimeout as sleep } from 'node:timers/promises';

export type RetryOptions = { attempts: number; baseDelayMs: number };

export type RetryHooks = {
  /** False stops retrying: the same request would fail the same way. */
  retryable(err: unknown): boolean;
  /** Called after each failed attempt (1-based), with whether another one follows. */
  onFailure(err: unknown, attempt: number, willRetry: boolean): void;
  /** Aborting it ends the wait before the next attempt: the last error is thrown. */
  signal?: AbortSignal | undefined;
};

/**
 * Runs `task` up to `attempts` times, waiting baseDelayMs, 2×, 4×... between tries.
 * Resolves to the first success; rejects with the last error.
 */
export async function retryWithBackoff<T>(
  task: () => Promise<T>,
  { attempts, baseDelayMs }: RetryOptions,
  hooks: RetryHooks,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await task();
    } catch (err) {
      const willRetry = attempt < attempts && hooks.retryable(err) && !hooks.signal?.aborted;
      hooks.onFailure(err, attempt, willRetry);
      if (!willRetry) throw err;
      const waited = await sleep(baseDelayMs * 2 ** (attempt - 1), true, {
        signal: hooks.signal,
      }).catch(() => false);
      if (!waited) throw err;
    }
  }
}
