import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdapterFactory, type AdapterFactory } from '../../adapters/index.ts';
import { MemoryStore } from '../../adapters/memory.ts';
import { openDb } from '../../server/db.ts';
import { migrate } from '../../server/migrate.ts';
import { openRedis } from '../../server/redis.ts';
import { freshPostgresUrl, freshRedisUrl } from '../support/databases.ts';
import { tempEmbeddedDb } from '../support/embedded-db.ts';

type Storage = { make: AdapterFactory; close(): Promise<void> };
const deps = { findClient: async () => undefined, refreshReuseGraceSeconds: 0 };

const storages: Record<string, () => Promise<Storage>> = {
  'PostgreSQL alone': async () => {
    const db = await openDb({ databaseUrl: await freshPostgresUrl(), dataDir: '', poolMax: 2 });
    await migrate(db);
    return { make: createAdapterFactory({ db, ...deps }), close: () => db.destroy() };
  },
  'PostgreSQL + Redis': async () => {
    const db = await openDb({ databaseUrl: await freshPostgresUrl(), dataDir: '', poolMax: 2 });
    await migrate(db);
    const redisUrl = await freshRedisUrl();
    const redis = openRedis({
      redisUrl,
      redisSentinels: [],
      redisSentinelName: '',
      redisClusterNodes: [],
    })!;
    return {
      make: createAdapterFactory({ db, redis, ...deps }),
      close: async () => {
        await redis.quit();
        await db.destroy();
      },
    };
  },
  embedded: async () => {
    const { db, cleanup } = await tempEmbeddedDb();
    return {
      make: createAdapterFactory({ db, memory: new MemoryStore(), ...deps }),
      close: cleanup,
    };
  },
};

// oidc-provider saves an interaction with what is left of it, and accepts one up to 15 s past
// its expiry: a save with no time left must not store a copy that never expires.
describe.each(Object.keys(storages))('a payload saved with no time left, on %s', (name) => {
  let storage: Storage;
  beforeAll(async () => {
    storage = await storages[name]!();
  });
  afterAll(() => storage.close());

  it('is gone, with the copy stored before, rather than kept for ever', async () => {
    const interactions = storage.make('Interaction');
    await interactions.upsert('lapsed', { uid: 'lapsed-uid', returnTo: '/auth' }, 60);
    expect(await interactions.findByUid('lapsed-uid')).toBeDefined();
    await interactions.upsert('lapsed', { uid: 'lapsed-uid', returnTo: '/auth' }, 0);
    expect(await interactions.find('lapsed')).toBeUndefined();
    await interactions.upsert('overdue', { uid: 'overdue-uid' }, -3);
    expect(await interactions.find('overdue')).toBeUndefined();
    expect(await interactions.findByUid('overdue-uid')).toBeUndefined();
    await storage.make('Session').upsert('session', { accountId: 'u1', uid: 's-uid' }, 0);
    expect(await storage.make.sessionsOf('u1')).toEqual([]);
  });
});
