import type { AdapterFactory } from '../../adapters/index.ts';
import { accountSessionsKey, type RedisClient } from '../../adapters/redis.ts';
import { affected, type Db } from '../db.ts';

/** Every model oidc-provider ties to a grant, revoked together with it. */
const GRANT_MODELS = [
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
];

/**
 * Signs an account out everywhere: after a password reset, when an admin or the directory
 * disables it, or when the user asks. Sessions live in Redis or PostgreSQL; grants (and with
 * them refresh tokens) always in PostgreSQL.
 */
export function createAccountSignOut({
  db,
  redis,
  adapter,
}: {
  db: Db;
  redis?: RedisClient | undefined;
  adapter: AdapterFactory;
}) {
  const sessions = adapter('Session');

  async function deleteSessions(accountId: string, except?: string): Promise<number> {
    if (!redis) {
      const query = db('oidc_payloads').where({ model: 'Session', account_id: accountId });
      return affected(await (except ? query.whereNot({ id: except }).delete() : query.delete()));
    }
    const key = accountSessionsKey(accountId);
    let ended = 0;
    for (const id of await redis.smembers(key)) {
      if (id === except) continue;
      // The set may name a session that has since been signed in to by another account.
      const session = await sessions.find(id);
      if (session?.accountId === accountId) {
        await sessions.destroy(id);
        ended++;
      }
      await redis.srem(key, id);
    }
    return ended;
  }

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
      return { ended: await deleteSessions(accountId, except), validFrom };
    },

    /**
     * Revokes every grant of the account but `except`: its refresh tokens, opaque access tokens
     * and codes.
     * What the user consented to is kept: withdrawing consent is a choice of its own.
     */
    async revokeGrants(accountId: string, except: string[] = []): Promise<number> {
      const grants: { id: string }[] = await db('oidc_payloads')
        .select('id')
        .where({ model: 'Grant', account_id: accountId })
        .whereNotIn('id', except);
      for (const { id } of grants) {
        for (const model of GRANT_MODELS) await adapter(model).revokeByGrantId(id);
        await adapter('Grant').destroy(id);
      }
      return grants.length;
    },
  };
}

export type AccountSignOut = ReturnType<typeof createAccountSignOut>;
