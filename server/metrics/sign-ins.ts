import type { Metrics } from './metrics.ts';

export type SignInMethod = 'password' | 'directory' | 'passkey' | 'second_factor';

/**
 * The outcome label of a sign-in's reason (the audit event's): a fixed set, whatever reasons
 * the code grows; what it does not name counts as `other`.
 */
const OUTCOMES: Record<string, string> = {
  success: 'success',
  mfa_required: 'mfa_required',
  wrong_password: 'wrong_password',
  unknown_email: 'unknown_account',
  unknown_passkey: 'unknown_account',
  locked: 'locked',
  rate_limited: 'rate_limited',
  disabled: 'disabled',
  email_not_verified: 'email_not_verified',
  directory_unavailable: 'directory_unavailable',
};

/** Counts one sign-in attempt. A failed second factor (any reason but the limits) is mfa_failed. */
export function countSignIn(metrics: Metrics, method: SignInMethod, reason: string): void {
  const outcome =
    method === 'second_factor' && !OUTCOMES[reason] ? 'mfa_failed' : (OUTCOMES[reason] ?? 'other');
  metrics.signIns.inc({ method, outcome });
}
