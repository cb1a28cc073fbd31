import { createHmac } from 'node:crypto';
import { constantTimeEqual } from './constant-time.ts';

/** What a token is bound to; every binding is named in server/http/csrf-bindings.ts. */
export type CsrfBinding = { readonly key: string };

/**
 * A form token bound to what the form acts on (an interaction uid, a session): an HMAC under a
 * cookie key, so a page of another origin cannot produce one for the victim's interaction.
 */
export function createCsrf(key: string) {
  const token = (binding: CsrfBinding) =>
    createHmac('sha256', key).update(`csrf:${binding.key}`).digest('base64url');
  return {
    token,
    verify: (binding: CsrfBinding, submitted: unknown) =>
      typeof submitted === 'string' && constantTimeEqual(token(binding), submitted),
  };
}

export type Csrf = ReturnType<typeof createCsrf>;
