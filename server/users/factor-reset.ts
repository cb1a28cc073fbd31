import type { AuditEvent, RequestFacts } from '../audit/audit.ts';
import type { RemovedFactors } from '../mfa/mfa.ts';
import type { Services } from '../services.ts';
import type { User } from './store.ts';

type Deps = Pick<Services, 'db' | 'mfa' | 'audit' | 'factorChanged' | 'signOut'>;

/**
 * An admin's "remove every second factor" (a lost phone; the CLI's `users reset-mfa`, the admin
 * API's): the authenticator app, recovery codes and passkeys go with their record in one
 * transaction, and the owner is told by email, as of any change of factor: were it not their
 * request, the "this wasn't me" link locks the account. Every browser is signed out with them:
 * a session that proved a factor now gone (a thief's, with the lost phone) must not stand as
 * one that did; apps keep their grants, and the admin API refuses tokens of sign-ins before
 * (server/admin-api/bearer.ts). Says what went.
 */
export async function resetSecondFactors(
  { db, mfa, audit, factorChanged, signOut }: Deps,
  user: User,
  actor: AuditEvent['actor'],
  facts: RequestFacts = {},
): Promise<RemovedFactors> {
  const validFrom = Math.floor(Date.now() / 1000);
  const { gone: removed, signedOut } = await db.transaction(async (trx) => {
    const gone = await mfa.reset(user.id, trx);
    const ended = { keepSession: undefined, validFrom };
    const out = await signOut.endSessionsWithin(trx, user.id, ended, []);
    // Nested: the audit trail drops top-level detail named like a secret ("codes", "keys").
    const event = { type: 'mfa_reset', outcome: 'success' as const, actor, subject: user.id };
    await audit.within(trx, { ...event, detail: { removed: gone } }, facts);
    return { gone, signedOut: out };
  });
  await signOut.cleanUp(signedOut);
  if (removed.authenticatorApp || removed.recoveryCodes || removed.passkeys)
    factorChanged(user, 'factors_reset');
  return removed;
}
