import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import knexFactory from 'knex';
import { inject } from 'vitest';
import { closeDb, openDb, type Db } from '../../server/db.ts';
import { migrate } from '../../server/migrate.ts';

/** A fresh, empty PostgreSQL database in the run's server; returns its URL. */
export async function freshPostgresUrl(): Promise<string> {
  const base = inject('postgresUrl');
  const name = `t_${randomBytes(6).toString('hex')}`;
  const admin = knexFactory({ client: 'pg', connection: base, pool: { min: 0, max: 1 } });
  await admin.raw(`CREATE DATABASE ${name}`);
  await admin.destroy();
  return base.replace(/\/postgres$/, `/${name}`);
}

/** A Redis database number of its own (the run's server has 256), emptied; returns its URL. */
export async function freshRedisUrl(): Promise<string> {
  const base = inject('redisUrl');
  const counter = new Redis(base);
  const n = ((await counter.incr('test:db-counter')) % 255) + 1;
  await counter.quit();
  const url = `${base}/${n}`;
  const redis = new Redis(url);
  await redis.flushdb();
  await redis.quit();
  return url;
}

/** A migrated database of its own on the run's PostgreSQL server, and its URL. */
export async function tempPostgresDb(): Promise<{ db: Db; url: string; cleanup(): Promise<void> }> {
  const url = await freshPostgresUrl();
  const db = await openDb({ databaseUrl: url, dataDir: '', poolMax: 4 });
  await migrate(db);
  return { db, url, cleanup: () => closeDb(db) };
}
