import { migrationSource } from '../migrations/index.ts';
import type { Db } from './db.ts';
import { whileLocked } from './locks.ts';

/** Applies pending migrations; processes starting together take turns (knex would fail the others). */
export async function migrate(db: Db): Promise<string[]> {
  return whileLocked(db, 'migrate', async () => {
    const [, applied] = (await db.migrate.latest({ migrationSource })) as [number, string[]];
    return applied;
  });
}
