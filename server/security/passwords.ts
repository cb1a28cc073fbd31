import argon2 from 'argon2';
import pLimit from 'p-limit';
import { defaultArgon2Concurrency } from '../../config/defaults.ts';
import { NO_METRICS, type Metrics } from '../metrics/metrics.ts';
import { inSpan } from '../tracing/span.ts';

export type Argon2Params = { memoryCost: number; timeCost: number; parallelism: number };

/**
 * argon2id hashing, at most `concurrency` hashes at once; the rest wait their turn here, so
 * other users of libuv's thread pool (DNS lookups, files) wait for at most one hash.
 */
export function createPasswordHasher(
  { concurrency = defaultArgon2Concurrency(), ...params }: Argon2Params & { concurrency?: number },
  metrics: Metrics = NO_METRICS,
) {
  const options: NonNullable<Parameters<typeof argon2.hash>[1]> = {
    type: argon2.argon2id as 2,
    ...params,
  };
  const slots = pLimit(concurrency);
  metrics.onScrape(() => metrics.argon2Queue.set({}, slots.pendingCount));
  /** `work` in its turn, the wait for a slot measured. */
  const limit = <T>(work: () => Promise<T>): Promise<T> => {
    const waited = metrics.argon2Wait.startTimer();
    return slots(() => (waited(), work()));
  };
  // Verified against when the email is unknown, so that answer costs the same time as a wrong password.
  const dummy = argon2.hash('latchkey-timing-equaliser', options);

  return {
    // The span holds the wait for a slot too: that wait is what a slow sign-in may be made of.
    hash: (password: string) =>
      inSpan('argon2.hash', {}, () => limit(() => argon2.hash(password, options))),

    /** Verifies, and says whether the stored hash should be replaced because parameters changed. */
    async verify(
      hash: string | null | undefined,
      password: string,
    ): Promise<{ ok: boolean; rehash: boolean }> {
      const against = hash ?? (await dummy);
      const ok = await inSpan('argon2.verify', {}, () =>
        limit(() => argon2.verify(against, password)),
      ).catch(() => false);
      if (!ok || !hash) return { ok: false, rehash: false };
      return { ok: true, rehash: argon2.needsRehash(hash, options) };
    },
  };
}

export type PasswordHasher = ReturnType<typeof createPasswordHasher>;
