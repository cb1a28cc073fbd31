import type { Knex } from 'knex';
import type { AuditEvent, RequestFacts } from '../audit/audit.ts';
import { createOutboxStore } from '../mail/outbox-store.ts';
import type { Services } from '../services.ts';
import type { User } from './store.ts';

type Deps = Pick<Services, 'db' | 'config' | 'audit' | 'signOut' | 'mailer'>;

/** Why an account may not be deleted; undefined when it may. */
export function deletionRefused(config: Deps['config'], user: User): string | undefined {
  // A directory user's account is the directory's: deleted here, it would come back at the next
  // sign-in or sync. Their data is erased where it is managed.
  if (user.source === 'ldap')
    return 'Your account is managed by your organisation’s directory. Ask its administrator to remove it.';
  if (!config.accountDeletion) return 'Accounts cannot be deleted here. Ask the administrator.';
  return undefined;
}

/** Audit detail keys that name the person, dropped from the account's kept audit rows. */
const PERSONAL_DETAIL_KEYS = [
  'email',
  'newEmail',
  'restoreEmail',
  'name',
  'given_name',
  'family_name',
];

/**
 * Keeps the account's audit trail but pseudonymised: the user id stays (the security record
 * still links its events together), the email address and names go. Rows are found by the
 * subject index: those about the user (subject = id) and those an admin command wrote about the
 * address (subject = the email, turned into the id).
 */
async function pseudonymiseAudit(trx: Knex, user: User): Promise<void> {
  const addresses = [...new Set([user.email, user.email.toLowerCase()])];
  await trx('audit_events').whereIn('subject', addresses).update({ subject: user.id });
  await trx('audit_events')
    .where({ subject: user.id })
    .update({ detail: trx.raw('detail - ?::text[]', [PERSONAL_DETAIL_KEYS]) });
}

/**
 * Deletes an account: the one way, for the owner's page (/account/delete) and the admin CLI
 * (`users delete`). In one transaction: every grant is revoked and the account signed out
 * (server/users/sign-out.ts), waiting mail to the address is dropped, the audit trail is
 * pseudonymised, the user row goes and with it (ON DELETE CASCADE) factors, passkeys, recovery
 * codes, known devices, consents, email link tokens and password history, and the deletion is
 * recorded. After the commit, sessions and grants are deleted from their stores (adapter
 * endSessions, revokeGrant), and a confirmation goes to the address in the background.
 * The caller checks `deletionRefused` first.
 */
export async function deleteAccount(
  deps: Deps,
  user: User,
  actor: AuditEvent['actor'],
  facts: RequestFacts = {},
): Promise<void> {
  const { db, config, audit, signOut, mailer } = deps;
  const outbox = createOutboxStore(db, config.sealingKey);
  const validFrom = Math.floor(Date.now() / 1000);
  const signedOut = await db.transaction(async (trx) => {
    const ended = await signOut.within(trx, user.id, { validFrom });
    await outbox.forgetMailTo(trx, user.email);
    await pseudonymiseAudit(trx, user);
    await trx('users').where({ id: user.id }).delete();
    await audit.within(
      trx,
      { type: 'account_deleted', outcome: 'success', actor, subject: user.id },
      facts,
    );
    return ended;
  });
  await signOut.cleanUp(signedOut);
  const time = new Date();
  mailer.sendInBackground(async () => ({
    to: user.email,
    template: 'account-deleted',
    data: { time, link: `${config.issuer}/`, name: user.name ?? undefined },
  }));
}
