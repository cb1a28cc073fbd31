import type { Db } from '../db.ts';

/**
 * Remembers, per user and client, the grant that holds the user's consent. oidc-provider keeps
 * the grant id only in the browser session; with this a new session (another device, after a
 * logout) finds the consent again, as users of Keycloak or Auth0 expect.
 */
export function createConsentStore(db: Db) {
  return {
    async grantIdFor(accountId: string, clientId: string): Promise<string | undefined> {
      const row = await db('consents')
        .select('grant_id')
        .where({ account_id: accountId, client_id: clientId })
        .first();
      return row?.grant_id;
    },

    async remember(accountId: string, clientId: string, grantId: string): Promise<void> {
      await db('consents')
        .insert({
          account_id: accountId,
          client_id: clientId,
          grant_id: grantId,
          updated_at: db.fn.now(),
        })
        .onConflict(['account_id', 'client_id'])
        .merge();
    },
  };
}

export type ConsentStore = ReturnType<typeof createConsentStore>;
