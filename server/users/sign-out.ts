import type { AdapterFactory } from '../../adapters/index.ts';
import type { Db } from '../db.ts';

/**
 * Signs an account out everywhere: after a password reset, when an admin or the directory
 * disables it, or when the user asks. Where sessions and grants live is the adapters' business.
 */
export function createAccountSignOut({ db, adapter }: { db: Db; adapter: AdapterFactory }) {
  const sessions = adapter('Session');

  return {
    /**
     * Ends every session of the account but `except` (the one doing the asking, if any). The
     * account notes the time first: a session signed in before it no longer stands even if a
     * request in flight writes it back (session-rule.ts), and device cookies lose their trust.
     * The kept session counts as signed in then, its user having just proved who they are; so
     * does a sign-in this request finishes (`validFrom`). Sign-ins count in whole seconds (as
     * oidc-provider keeps them), so one whose password was checked in that same second stands:
     * a later second would refuse a user who signs in again at once.
     */
    async endSessions(
      accountId: string,
      except?: string,
    ): Promise<{ ended: number; validFrom: number }> {
      const validFrom = Math.floor(Date.now() / 1000);
      await db('users').where({ id: accountId }).update({ sessions_valid_from: validFrom });
      if (except) {
        const kept = await sessions.find(except);
        if (kept?.accountId === accountId && typeof kept.exp === 'number' && kept.exp > validFrom)
          await sessions.upsert(except, { ...kept, loginTs: validFrom }, kept.exp - validFrom);
      }
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
