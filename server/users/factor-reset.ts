import type { AuditEvent, RequestFacts } from '../audit/audit.ts';
import type { RemovedFactors } from '../mfa/mfa.ts';
import type { Services } from '../services.ts';
import type { User } from './store.ts';

type Deps = Pick<Services, 'db' | 'mfa' | 'audit' | 'factorChanged'>;

/**
 * An admin's "remove every second factor" (a lost phone; the CLI's `users reset-mfa`, the admin
 * API's): the authenticator app, recovery codes and passkeys go with their record in one
 * transaction, and the owner is told by email, as of any change of factor: were it not their
 * request, the "this wasn't me" link locks the account. Says what went.
 */
export async function resetSecondFactors(
  { db, mfa, audit, factorChanged }: Deps,
  user: User,
  actor: AuditEvent['actor'],
  facts: RequestFacts = {},
): Promise<RemovedFactors> {
  const removed = await db.transaction(async (trx) => {
    const gone = await mfa.reset(user.id, trx);
    // Nested: the audit trail drops top-level detail named like a secret ("codes", "keys").
    const event = { type: 'mfa_reset', outcome: 'success' as const, actor, subject: user.id };
    await audit.within(trx, { ...event, detail: { removed: gone } }, facts);
    return gone;
  });
  if (removed.authenticatorApp || removed.recoveryCodes || removed.passkeys)
    factorChanged(user, 'factors_reset');
  return removed;
}
