import { availableParallelism } from 'node:os';
import argon2 from 'argon2';
import pLimit from 'p-limit';

export type Argon2Params = { memoryCost: number; timeCost: number; parallelism: number };

/**
 * argon2id hashing. `concurrency` (default: one per CPU core) caps the hashes computed at once:
 * each is CPU-bound and walks its own 19 MiB, so more at once than there are cores only
 * time-slices them, each pushing the others' memory out of the caches (measured here: about
 * 10% more CPU per hash, and fewer sign-ins per second, with libuv's 4 threads on 2 cores).
 */
export function createPasswordHasher({
  concurrency = availableParallelism(),
  ...params
}: Argon2Params & { concurrency?: number }) {
  const options: NonNullable<Parameters<typeof argon2.hash>[1]> = {
    type: argon2.argon2id as 2,
    ...params,
  };
  const limit = pLimit(concurrency);
  // Verified against when the email is unknown, so that answer costs the same time as a wrong password.
  const dummy = argon2.hash('latchkey-timing-equaliser', options);

  return {
    hash: (password: string) => limit(() => argon2.hash(password, options)),

    /** Verifies, and says whether the stored hash should be replaced because parameters changed. */
    async verify(
      hash: string | null | undefined,
      password: string,
    ): Promise<{ ok: boolean; rehash: boolean }> {
      const against = hash ?? (await dummy);
      const ok = await limit(() => argon2.verify(against, password)).catch(() => false);
      if (!ok || !hash) return { ok: false, rehash: false };
      return { ok: true, rehash: argon2.needsRehash(hash, options) };
    },
  };
}

export type PasswordHasher = ReturnType<typeof createPasswordHasher>;
