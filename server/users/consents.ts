import type { Knex } from 'knex';
import type { Db } from '../db.ts';

/** What a user allowed a client: OIDC scopes, claims, and scopes per API (resource indicator). */
export type Consent = { scope: string; claims: string[]; resources: Record<string, string> };

const parse = <T>(value: unknown): T =>
  (typeof value === 'string' ? JSON.parse(value) : value) as T;

/**
 * Remembers consent per user and client. oidc-provider keeps a grant only in the browser
 * session; with this a new session (another device, after a logout) is not asked again, as
 * users of Keycloak or Auth0 expect.
 */
export function createConsentStore(db: Db) {
  return {
    async find(accountId: string, clientId: string): Promise<Consent | undefined> {
      const row = await db('consents')
        .where({ account_id: accountId, client_id: clientId })
        .first();
      if (!row) return undefined;
      return { scope: row.scope, claims: parse(row.claims), resources: parse(row.resources) };
    },

    /** In `trx`, the transaction of its audit row, when given. */
    async remember(
      accountId: string,
      clientId: string,
      consent: Consent,
      trx: Knex = db,
    ): Promise<void> {
      await trx('consents')
        .insert({
          account_id: accountId,
          client_id: clientId,
          scope: consent.scope,
          claims: JSON.stringify(consent.claims),
          resources: JSON.stringify(consent.resources),
          updated_at: new Date(),
        })
        .onConflict(['account_id', 'client_id'])
        .merge();
    },
  };
}

export type ConsentStore = ReturnType<typeof createConsentStore>;
