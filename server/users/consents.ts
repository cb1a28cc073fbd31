import type { Knex } from 'knex';
import { affected, type Db } from '../db.ts';

/** What a user allowed a client: OIDC scopes, claims, and scopes per API (resource indicator). */
export type Consent = { scope: string; claims: string[]; resources: Record<string, string> };

/** A consent as the account pages list it. */
export type RememberedConsent = Consent & { clientId: string; updatedAt: Date };

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

    /** Every client the user has allowed, with when the consent was last given or widened. */
    async list(accountId: string): Promise<RememberedConsent[]> {
      const rows = await db('consents').where({ account_id: accountId }).orderBy('client_id');
      return rows.map((row) => ({
        clientId: row.client_id,
        scope: row.scope,
        claims: parse(row.claims),
        resources: parse(row.resources),
        updatedAt: new Date(row.updated_at),
      }));
    },

    /** Forgets the consent, in `trx` with its audit row; false when there was none. */
    async forget(accountId: string, clientId: string, trx: Knex = db): Promise<boolean> {
      const deleted = await trx('consents')
        .where({ account_id: accountId, client_id: clientId })
        .delete();
      return affected(deleted) > 0;
    },
  };
}

export type ConsentStore = ReturnType<typeof createConsentStore>;
