// Rows PostgreSQL wrote and transactions it ran during a stage of the run, per request or flow
// that Latchkey on PostgreSQL served. Only that server uses that database, so the other servers
// may be measured in the same stage.
import { setTimeout as sleep } from 'node:timers/promises';
import { PG_STATS_SETTLE_MS, type PgActivity, type Results } from './plan.ts';
import type { Server } from './servers.ts';

/**
 * Runs `work`, which returns how many requests or flows the server on PostgreSQL (if any among
 * `servers`) served, and records what its database did meanwhile.
 */
export async function withPgActivity(
  servers: Server[],
  name: string,
  per: PgActivity['per'],
  results: Results,
  work: (onPostgres: Server | undefined) => Promise<number>,
): Promise<void> {
  const onPostgres = servers.find((s) => s.readPgCounters);
  const read = onPostgres?.readPgCounters;
  if (!read) return void (await work(undefined));
  const before = await read();
  const count = await work(onPostgres);
  await sleep(PG_STATS_SETTLE_MS);
  const after = await read();
  results.pg.push({
    name,
    per,
    count,
    rowsWritten: after.rowsWritten - before.rowsWritten,
    // Less the reading's own transaction.
    transactions: Math.max(0, after.transactions - before.transactions - 1),
  });
}
