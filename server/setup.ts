import type { Config } from '../config/load.ts';
import { closeDb, type Db } from './db.ts';
import { withAdvisoryLock } from './locks.ts';
import type { Logger } from './log.ts';
import { migrate } from './migrate.ts';
import { resealLegacy } from './security/reseal.ts';

/**
 * What the storage needs before a process serves from it: pending migrations, then old sealed
 * values bound to their rows. `setupDb` is a connection of its own on PostgreSQL (closed here),
 * without the dependency timeout: both may rightly take longer than a request may wait.
 */
export async function prepareStorage(
  config: Pick<Config, 'sealingKey'>,
  log: Logger,
  db: Db,
  setupDb: Db | undefined,
): Promise<void> {
  try {
    const applied = await migrate(setupDb ?? db);
    if (applied.length) log.info({ applied }, 'migrations applied');
    // One process at a time; one that finds the lock taken goes on (old values still open).
    const resealed = await withAdvisoryLock(setupDb ?? db, 'reseal', (trx) =>
      resealLegacy(trx, config.sealingKey),
    );
    if (resealed) log.info({ resealed }, 'sealed values bound to their rows');
  } finally {
    if (setupDb) await closeDb(setupDb);
  }
}
