import type { Knex } from 'knex';
import { revokeGrantsOfClientWithin } from '../../adapters/postgres.ts';
import type { Services } from '../services.ts';

type Deps = Pick<Services, 'db' | 'clients' | 'adapter' | 'log'>;

/**
 * Deletes a client with what let it act for its users: its grants (always in PostgreSQL) go in
 * the same transaction, and its users' consents with the row (foreign key), so that no code,
 * refresh or access token of it works from the commit on, and a client registered later under
 * the same id inherits nothing. `record` writes the audit row in that transaction. Tokens of its
 * own (client_credentials) have no grant: they die with the client, as every endpoint and the
 * admin API look their client up. False when there was no such client.
 */
export async function removeClient(
  { db, clients, adapter, log }: Deps,
  clientId: string,
  record: (trx: Knex.Transaction, grants: number) => Promise<void>,
): Promise<boolean> {
  let revoked: string[] = [];
  const found = await db.transaction(async (trx) => {
    if (!(await clients.delete(clientId, trx))) return false;
    revoked = await revokeGrantsOfClientWithin(trx, clientId);
    await record(trx, revoked.length);
    return true;
  });
  await clients.forget(clientId);
  // What of those grants Redis holds (access tokens, codes) no longer works: deleted here, or
  // left to expire should Redis not answer.
  try {
    for (const id of revoked) await adapter.revokeGrant(id);
  } catch (err) {
    log.warn({ error: (err as Error).message }, 'revoked grants left to expire');
  }
  return found;
}
