import type { AdapterFactory } from '../../adapters/index.ts';

/**
 * Long enough to find a security key or a phone and touch it (the browser's own prompt gives
 * up after PASSKEY_TIMEOUT_MS); short, so a challenge seen on the page is soon worth nothing.
 */
export const CHALLENGE_TTL_SECONDS = 300;

/**
 * WebAuthn challenges, kept on the server under what they are for ("mfa:<interaction uid>",
 * "register:<session id>"): one per purpose at a time (a new one replaces the old), and taken
 * away by the first answer, right or wrong, so an assertion cannot be posted twice.
 */
export function createChallenges(adapter: AdapterFactory) {
  const store = adapter('WebAuthnChallenge');
  return {
    async issue(key: string, challenge: string): Promise<void> {
      await store.upsert(key, { challenge } as never, CHALLENGE_TTL_SECONDS);
    },

    /** The challenge issued for `key`, if any and not expired; it cannot be taken again. */
    async take(key: string): Promise<string | undefined> {
      const found = (await store.take(key)) as { challenge?: unknown } | undefined;
      return typeof found?.challenge === 'string' ? found.challenge : undefined;
    },
  };
}

export type Challenges = ReturnType<typeof createChallenges>;
