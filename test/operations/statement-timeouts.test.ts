import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import knexFactory, { type Knex } from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isUnavailable } from '../../adapters/outages.ts';
import { closeDb, openDb, type Db } from '../../server/db.ts';
import { withAdvisoryLock } from '../../server/locks.ts';
import { freshPostgresUrl } from '../support/databases.ts';

const TIMEOUT_MS = 300;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("the server's PostgreSQL pool: what the client gives up on, PostgreSQL ends too", () => {
  let dataDir: string;
  let db: Db;
  let other: Knex;

  beforeAll(async () => {
    const url = await freshPostgresUrl();
    dataDir = mkdtempSync(join(tmpdir(), 'latchkey-timeouts-'));
    db = await openDb({ databaseUrl: url, dataDir, poolMax: 4, timeoutMs: TIMEOUT_MS });
    other = knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: 2 } });
    await other.schema.createTable('rows', (t) => t.integer('n'));
  });
  afterAll(async () => {
    await other?.destroy();
    if (db) await closeDb(db);
    rmSync(dataDir, { recursive: true, force: true });
  });

  const count = async () => Number((await other('rows').count({ n: '*' }).first())?.n);

  it('a write that waited past the timeout fails, and does not commit once the wait ends', async () => {
    const holder = await other.transaction();
    let failure: unknown;
    try {
      await holder.raw('LOCK TABLE rows IN ACCESS EXCLUSIVE MODE');
      await db('rows')
        .insert({ n: 1 })
        .catch((err: unknown) => (failure = err));
    } finally {
      await holder.rollback();
    }
    expect(isUnavailable(failure)).toBe(true);
    await sleep(TIMEOUT_MS * 2);
    expect(await count()).toBe(0);
  });

  it('a transaction left idle past the timeout is ended by PostgreSQL, its locks released', async () => {
    let resume!: () => void;
    const held = new Promise<void>((r) => (resume = r));
    const abandoned = db.transaction(async (trx) => {
      await trx('rows').insert({ n: 2 });
      await trx.raw('LOCK TABLE rows IN SHARE MODE');
      await held;
    });
    await sleep(TIMEOUT_MS * 3);
    // Another session may write again: the abandoned transaction holds nothing.
    await other('rows').insert({ n: 3 }).timeout(TIMEOUT_MS);
    resume();
    await expect(abandoned).rejects.toThrow();
    expect(await other('rows').pluck('n')).toEqual([3]);
  });

  it('a background job under an advisory lock may wait on other work (the directory, files, key generation) longer than that', async () => {
    const done = await withAdvisoryLock(db, 'slow-job', async (trx) => {
      await trx('rows').insert({ n: 4 });
      await sleep(TIMEOUT_MS * 3);
      await trx('rows').insert({ n: 5 });
      return true;
    });
    expect(done).toBe(true);
    expect(await other('rows').whereIn('n', [4, 5]).pluck('n')).toEqual([4, 5]);
  });
});
