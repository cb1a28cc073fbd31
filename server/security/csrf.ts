import { createHmac } from 'node:crypto';
import { constantTimeEqual } from './constant-time.ts';

/**
 * A form token bound to what the form acts on (an interaction uid, a session): an HMAC under a
 * cookie key, so a page of another origin cannot produce one for the victim's interaction.
 */
export function createCsrf(key: string) {
  const token = (binding: string) =>
    createHmac('sha256', key).update(`csrf:${binding}`).digest('base64url');
  return {
    token,
    verify: (binding: string, submitted: unknown) =>
      typeof submitted === 'string' && constantTimeEqual(token(binding), submitted),
  };
}

export type Csrf = ReturnType<typeof createCsrf>;
