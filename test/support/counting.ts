/**
 * Counts the calls of `target[method]` from now on (the real method still runs), e.g. argon2
 * hashes through `server.passwords`: "the same work" is checked by counting, not by timing.
 */
export function countCalls<T extends object, K extends keyof T>(target: T, method: K) {
  const original = target[method] as (...args: unknown[]) => unknown;
  const counter = {
    calls: 0,
    /** Puts the real method back. */
    restore: () => void (target[method] = original as T[K]),
  };
  target[method] = ((...args: unknown[]) => {
    counter.calls++;
    return original.apply(target, args);
  }) as T[K];
  return counter;
}
