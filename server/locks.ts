import type { Knex } from 'knex';
import type { Db } from './db.ts';

/**
 * Runs `job` in a transaction holding a PostgreSQL advisory lock named `name`, so that of many
 * processes only one does it; returns undefined at once when another holds the lock. The job
 * gets the transaction: PGlite has one connection, so queries outside it would wait forever.
 */
export async function withAdvisoryLock<T>(
  db: Db,
  name: string,
  job: (trx: Knex.Transaction) => Promise<T>,
): Promise<T | undefined> {
  return db.transaction(async (trx) => {
    const { rows } = await trx.raw('SELECT pg_try_advisory_xact_lock(hashtext(?)) AS locked', [
      `latchkey:${name}`,
    ]);
    if (!rows[0]?.locked) return undefined;
    return job(trx);
  });
}
