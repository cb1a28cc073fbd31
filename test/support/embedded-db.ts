import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeDb, openDb, type Db } from '../../server/db.ts';
import { migrate } from '../../server/migrate.ts';

/** A migrated PGlite database in a temp folder, removed again by cleanup(). */
export async function tempEmbeddedDb(): Promise<{ db: Db; cleanup(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-pglite-'));
  const db = await openDb({ databaseUrl: undefined, dataDir: dir, poolMax: 1 });
  await migrate(db);
  return {
    db,
    async cleanup() {
      await closeDb(db);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
