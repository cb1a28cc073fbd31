import type { Knex } from 'knex';
import { isPglite, type Db } from './db.ts';

const key = (name: string) => `latchkey:${name}`;

/** How often a waiting lock is asked for again. */
const WAIT_POLL_MS = 100;

/**
 * Runs `job` in a transaction holding a PostgreSQL advisory lock named `name`, so that of many
 * processes only one does it at a time. By default returns undefined at once when another
 * holds the lock; with `wait` it waits its turn. The job gets the transaction: PGlite has one
 * connection, so queries outside it would wait forever. The jobs are background work that may
 * wait on other things between statements (the directory, archive files, key generation): the
 * pool's limit on an idle transaction (db.ts serverTimeouts) does not hold here; each statement
 * stays bounded.
 */
export async function withAdvisoryLock<T>(
  db: Db,
  name: string,
  job: (trx: Knex.Transaction) => Promise<T>,
  { wait = false } = {},
): Promise<T | undefined> {
  return db.transaction(async (trx) => {
    await trx.raw('SET LOCAL idle_in_transaction_session_timeout = 0');
    const tryLock = async () => {
      const { rows } = await trx.raw('SELECT pg_try_advisory_xact_lock(hashtext(?)) AS locked', [
        key(name),
      ]);
      return Boolean(rows[0]?.locked);
    };
    // Waiting is asking again, not one statement that waits: a statement may take no longer
    // than the pool's dependency timeout (query_timeout), and the holder may take longer.
    while (!(await tryLock())) {
      if (!wait) return undefined;
      await new Promise((r) => setTimeout(r, WAIT_POLL_MS));
    }
    return job(trx);
  });
}

/**
 * Runs `job` while holding a session-level advisory lock, for work that needs connections of
 * its own (knex migrations). PGlite is one process's database: nothing to wait for there.
 */
export async function whileLocked<T>(db: Db, name: string, job: () => Promise<T>): Promise<T> {
  if (isPglite(db)) return job();
  const connection = await db.client.acquireConnection();
  try {
    await db.raw('SELECT pg_advisory_lock(hashtext(?))', [key(name)]).connection(connection);
    try {
      return await job();
    } finally {
      await db.raw('SELECT pg_advisory_unlock(hashtext(?))', [key(name)]).connection(connection);
    }
  } finally {
    await db.client.releaseConnection(connection);
  }
}
