import argon2 from 'argon2';

export type Argon2Params = { memoryCost: number; timeCost: number; parallelism: number };

export function createPasswordHasher(params: Argon2Params) {
  const options: NonNullable<Parameters<typeof argon2.hash>[1]> = {
    type: argon2.argon2id as 2,
    ...params,
  };
  // Verified against when the email is unknown, so that answer costs the same time as a wrong password.
  const dummy = argon2.hash('latchkey-timing-equaliser', options);

  return {
    hash: (password: string) => argon2.hash(password, options),

    /** Verifies, and says whether the stored hash should be replaced because parameters changed. */
    async verify(
      hash: string | null | undefined,
      password: string,
    ): Promise<{ ok: boolean; rehash: boolean }> {
      const ok = await argon2.verify(hash ?? (await dummy), password).catch(() => false);
      if (!ok || !hash) return { ok: false, rehash: false };
      return { ok: true, rehash: argon2.needsRehash(hash, options) };
    },
  };
}

export type PasswordHasher = ReturnType<typeof createPasswordHasher>;
