import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import knexFactory, { type Knex } from 'knex';
import ClientPgLite from 'knex-pglite';
import { migrationSource } from '../migrations/index.ts';

export type Db = Knex;

export type DbOptions = { databaseUrl: string | undefined; dataDir: string; poolMax: number };

/** PostgreSQL when a URL is given, else PGlite (Postgres in WASM) kept in dataDir/pglite. */
export function openDb({ databaseUrl, dataDir, poolMax }: DbOptions): Db {
  if (databaseUrl) {
    return knexFactory({ client: 'pg', connection: databaseUrl, pool: { min: 0, max: poolMax } });
  }
  const filename = join(dataDir, 'pglite');
  mkdirSync(filename, { recursive: true });
  return knexFactory({ client: ClientPgLite, dialect: 'postgres', connection: { filename } });
}

export async function migrate(db: Db): Promise<string[]> {
  const [, applied] = (await db.migrate.latest({ migrationSource })) as [number, string[]];
  return applied;
}

export function isPglite(db: Db): boolean {
  return db.client.config.client === ClientPgLite;
}
