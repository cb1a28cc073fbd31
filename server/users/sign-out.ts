import type { Knex } from 'knex';
import type { AdapterFactory } from '../../adapters/index.ts';
import type { Stored } from '../../adapters/types.ts';
import { revokeGrantsWithin } from '../../adapters/postgres.ts';
import type { Db } from '../db.ts';
import type { Logger } from '../log.ts';
import { sessionStands } from './session-rule.ts';
import type { User } from './store.ts';

/** What a sign-out within a transaction leaves to delete once it commits (`cleanUp`). */
export type SignedOut = {
  accountId: string;
  /** The session that stays; every other one is deleted. */
  keepSession?: string | undefined;
  /** The one session to delete, when only one ended. */
  only?: string | undefined;
  grants: string[];
};

/**
 * Signs an account out everywhere: after a password reset, when an admin or the directory
 * disables it, or when the user asks. Where sessions and grants live is the adapters' business.
 */
export function createAccountSignOut({
  db,
  adapter,
  log,
  sessionTtl,
}: {
  db: Db;
  adapter: AdapterFactory;
  log: Logger;
  /** The longest a session lives from its last save (SESSION_TTL, seconds). */
  sessionTtl: number;
}) {
  const sessions = adapter('Session');

  /**
   * The session `sessionId` counts as signed in at `validFrom`, its user having just proved who
   * they are: it still stands once the account is signed out from then.
   */
  async function keepSession(accountId: string, sessionId: string, validFrom: number) {
    const kept = await sessions.find(sessionId);
    if (kept?.accountId === accountId && typeof kept.exp === 'number' && kept.exp > validFrom)
      await sessions.upsert(sessionId, { ...kept, loginTs: validFrom }, kept.exp - validFrom);
  }

  /**
   * The account notes the time: a session signed in before it no longer stands even if a
   * request in flight writes it back (session-rule.ts), and device cookies lose their trust.
   * Sign-ins count in whole seconds (as oidc-provider keeps them), so one whose password was
   * checked in that same second stands: a later second would refuse a user who signs in again
   * at once.
   */
  const markSignedOut = (trx: Knex, accountId: string, validFrom: number) =>
    trx('users')
      .where({ id: accountId })
      // Never back: a sign-out that took its time later may have committed first.
      .update({ sessions_valid_from: trx.raw('GREATEST(sessions_valid_from, ?)', [validFrom]) });

  /**
   * Notes on the user row that the session `uid` ended, until `until` (epoch seconds), and in
   * the same statement drops the notes that have run out: one atomic update, whatever else ends
   * at the same time.
   */
  const markSessionEnded = (trx: Knex, accountId: string, uid: string, until: number) =>
    trx('users')
      .where({ id: accountId })
      .update({
        ended_sessions: trx.raw(
          `(SELECT coalesce(jsonb_object_agg(key, value), '{}'::jsonb) FROM jsonb_each(ended_sessions)
            WHERE (value #>> '{}')::bigint > ?) || jsonb_build_object(?::text, ?::bigint)`,
          [Math.floor(Date.now() / 1000), uid, until],
        ),
      });

  return {
    keepSession,

    /**
     * Whether the session `kept` (as read before `trx`) still stands, checked against the user
     * row locked in `trx`: a sign-out that ended it and committed meanwhile (its owner's) is
     * seen, and the sign-out of `trx` then leaves it out. The caller keeps it (keepSession)
     * once `trx` commits.
     */
    async standsWithin(trx: Knex.Transaction, accountId: string, kept: Stored | undefined) {
      const user = await trx<User>('users').where({ id: accountId }).forUpdate().first();
      return !!user && kept?.payload.accountId === accountId && sessionStands(user, kept.payload);
    },

    /**
     * Ends sessions of the account as part of `trx`, with the change's audit row: `only` the
     * one (noted on the user row), or every one but `keepSession` (which must have been kept
     * first: keepSession), and revokes exactly the `grants` given (the apps used only in the
     * ended sessions). From the commit on none of them stands, even if a request in flight
     * writes one back (session-rule.ts), and none of those grants works; deleting what is left
     * is `cleanUp`'s, after the commit.
     */
    async endSessionsWithin(
      trx: Knex.Transaction,
      accountId: string,
      ended: { only: Stored } | { keepSession: string | undefined; validFrom: number },
      grants: string[],
    ): Promise<SignedOut> {
      if ('only' in ended) {
        const { id, payload } = ended.only;
        if (typeof payload.uid === 'string')
          await markSessionEnded(
            trx,
            accountId,
            payload.uid,
            Math.floor(Date.now() / 1000) + sessionTtl,
          );
        const revoked = await revokeGrantsWithin(trx, accountId, { only: grants });
        return { accountId, only: id, grants: revoked };
      }
      await markSignedOut(trx, accountId, ended.validFrom);
      const revoked = await revokeGrantsWithin(trx, accountId, { only: grants });
      return { accountId, keepSession: ended.keepSession, grants: revoked };
    },

    /**
     * Signs the account out everywhere as part of `trx`, the transaction of the change that
     * calls for it (a new password), so that it commits with the change or not at all: from
     * then no session signed in before `validFrom` stands, and no grant but `keepGrants` works
     * (the grants are revoked in PostgreSQL, where they live). A session to keep is kept first
     * (`keepSession`). What is left is deleting what no longer works: `cleanUp`, after the commit.
     */
    async within(
      trx: Knex.Transaction,
      accountId: string,
      {
        validFrom,
        keepSession,
        keepGrants = [],
      }: { validFrom: number; keepSession?: string | undefined; keepGrants?: string[] },
    ): Promise<SignedOut> {
      await markSignedOut(trx, accountId, validFrom);
      const grants = await revokeGrantsWithin(trx, accountId, { except: keepGrants });
      return { accountId, keepSession, grants };
    },

    /**
     * Deletes the sessions and the rest of the grants that `within` ended. Never throws: they
     * stopped working when it committed, and what is left (in Redis, say, while it is down)
     * expires by itself; a failure is logged.
     */
    async cleanUp({ accountId, keepSession, only, grants }: SignedOut): Promise<void> {
      try {
        await adapter.endSessions(accountId, only ? { only } : { except: keepSession });
        for (const id of grants) await adapter.revokeGrant(id);
      } catch (err) {
        log.warn(
          { error: (err as Error).message, accountId },
          'ended sessions and grants left to expire: they no longer work',
        );
      }
    },

    /**
     * Ends every session of the account but `except` (the one doing the asking, if any), which
     * counts as signed in now; so does a sign-in this request finishes (`validFrom`).
     */
    async endSessions(
      accountId: string,
      except?: string,
    ): Promise<{ ended: number; validFrom: number }> {
      const validFrom = Math.floor(Date.now() / 1000);
      await markSignedOut(db, accountId, validFrom);
      if (except) await keepSession(accountId, except, validFrom);
      return { ended: await adapter.endSessions(accountId, { except }), validFrom };
    },

    /**
     * Revokes every grant of the account but `except`: its refresh tokens, opaque access tokens
     * and codes.
     * What the user consented to is kept: withdrawing consent is a choice of its own.
     */
    async revokeGrants(accountId: string, except: string[] = []): Promise<number> {
      const grants = (await adapter.grantsOf(accountId)).filter(({ id }) => !except.includes(id));
      for (const { id } of grants) await adapter.revokeGrant(id);
      return grants.length;
    },
  };
}

export type AccountSignOut = ReturnType<typeof createAccountSignOut>;
