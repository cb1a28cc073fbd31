import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresAdapter, sweepExpired } from '../../adapters/postgres.ts';
import { RedisAdapter } from '../../adapters/redis.ts';
import { withReuseGrace } from '../../adapters/index.ts';
import type { StorageAdapter } from '../../adapters/types.ts';
import { openDb, type Db } from '../../server/db.ts';
import { migrate } from '../../server/migrate.ts';
import { freshPostgresUrl, freshRedisUrl } from '../support/databases.ts';
import { tempEmbeddedDb } from '../support/embedded-db.ts';

type Backend = { make(model: string): StorageAdapter; close(): Promise<void>; db?: Db };

const backends: Record<string, () => Promise<Backend>> = {
  'PostgreSQL server': async () => {
    const db = openDb({ databaseUrl: await freshPostgresUrl(), dataDir: '', poolMax: 4 });
    await migrate(db);
    return { db, make: (m) => new PostgresAdapter(db, m), close: () => db.destroy() };
  },
  PGlite: async () => {
    const { db, cleanup } = await tempEmbeddedDb();
    return { db, make: (m) => new PostgresAdapter(db, m), close: cleanup };
  },
  Redis: async () => {
    const redis = new Redis(await freshRedisUrl());
    return {
      make: (m) => new RedisAdapter(redis, m),
      close: async () => void (await redis.quit()),
    };
  },
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(Object.keys(backends))('adapter contract on %s', (name) => {
  let backend: Backend;
  beforeAll(async () => {
    backend = await backends[name]!();
  });
  afterAll(() => backend.close());

  it('finds what was upserted, and an upsert replaces the payload', async () => {
    const a = backend.make('AccessToken');
    await a.upsert('at1', { grantId: 'g1', accountId: 'u1', scope: 'openid' }, 60);
    expect(await a.find('at1')).toMatchObject({ grantId: 'g1', accountId: 'u1', scope: 'openid' });
    await a.upsert('at1', { grantId: 'g1', accountId: 'u1', scope: 'openid email' }, 60);
    expect((await a.find('at1'))?.scope).toBe('openid email');
    expect(await a.find('missing')).toBeUndefined();
  });

  it('keeps models apart under the same id', async () => {
    await backend.make('AccessToken').upsert('same', { kind: 'AccessToken' }, 60);
    await backend.make('AuthorizationCode').upsert('same', { kind: 'AuthorizationCode' }, 60);
    expect((await backend.make('AccessToken').find('same'))?.kind).toBe('AccessToken');
  });

  it('marks a payload consumed with the time it happened', async () => {
    const a = backend.make('AuthorizationCode');
    await a.upsert('code1', { grantId: 'g2' }, 60);
    expect((await a.find('code1'))?.consumed).toBeUndefined();
    const before = Math.floor(Date.now() / 1000);
    await a.consume('code1');
    const consumed = Number((await a.find('code1'))?.consumed);
    expect(consumed).toBeGreaterThanOrEqual(before - 1);
    expect(consumed).toBeLessThanOrEqual(before + 2);
  });

  it('destroys a payload', async () => {
    const a = backend.make('Session');
    await a.upsert('s1', { uid: 'uid-s1', accountId: 'u1' }, 60);
    await a.destroy('s1');
    expect(await a.find('s1')).toBeUndefined();
  });

  it('finds a session by uid and a device code by user code', async () => {
    await backend.make('Session').upsert('s2', { uid: 'uid-s2', accountId: 'u2' }, 60);
    expect(await backend.make('Session').findByUid('uid-s2')).toMatchObject({ accountId: 'u2' });
    expect(await backend.make('Session').findByUid('nope')).toBeUndefined();
    await backend.make('DeviceCode').upsert('dc1', { userCode: 'ABCD-EFGH', grantId: 'g9' }, 60);
    expect(await backend.make('DeviceCode').findByUserCode('ABCD-EFGH')).toMatchObject({
      grantId: 'g9',
    });
  });

  it('revokes every payload of a grant and nothing else', async () => {
    await backend.make('AccessToken').upsert('at-g3', { grantId: 'g3' }, 60);
    await backend.make('AuthorizationCode').upsert('code-g3', { grantId: 'g3' }, 60);
    await backend.make('AccessToken').upsert('at-g4', { grantId: 'g4' }, 60);
    for (const model of ['AccessToken', 'AuthorizationCode'])
      await backend.make(model).revokeByGrantId('g3');
    expect(await backend.make('AccessToken').find('at-g3')).toBeUndefined();
    expect(await backend.make('AuthorizationCode').find('code-g3')).toBeUndefined();
    expect(await backend.make('AccessToken').find('at-g4')).toBeDefined();
  });

  it('takes a payload once: of concurrent takes exactly one gets it', async () => {
    const a = backend.make('WebAuthnChallenge');
    await a.upsert('c1', { challenge: 'only-once' }, 60);
    const taken = await Promise.all(Array.from({ length: 8 }, () => a.take('c1')));
    expect(taken.filter(Boolean)).toEqual([{ challenge: 'only-once' }]);
    expect(await a.find('c1')).toBeUndefined();
    expect(await a.take('missing')).toBeUndefined();
  });

  it('honours expiry', async () => {
    const a = backend.make('Interaction');
    await a.upsert('short', { uid: 'uid-short' }, 1);
    await backend.make('WebAuthnChallenge').upsert('short-challenge', { challenge: 'late' }, 1);
    expect(await a.find('short')).toBeDefined();
    await sleep(2100);
    expect(await a.find('short')).toBeUndefined();
    expect(await a.findByUid('uid-short')).toBeUndefined();
    expect(await backend.make('WebAuthnChallenge').take('short-challenge')).toBeUndefined();
    if (backend.db) {
      expect(await sweepExpired(backend.db)).toBeGreaterThanOrEqual(1);
      expect(await backend.db('oidc_payloads').where({ id: 'short' }).first()).toBeUndefined();
    }
  });

  it('keeps the time of the first consumption when consumed again', async () => {
    const a = backend.make('AuthorizationCode');
    await a.upsert('code2', { grantId: 'g6' }, 60);
    await a.consume('code2');
    const first = Number((await a.find('code2'))?.consumed);
    await sleep(1100);
    await a.consume('code2');
    expect(Number((await a.find('code2'))?.consumed)).toBe(first);
  });

  it('serves a consumed refresh token as unconsumed only within the reuse grace window', async () => {
    const a = withReuseGrace(backend.make('RefreshToken'), 1);
    await a.upsert('rt1', { grantId: 'g5' }, 60);
    await a.consume('rt1');
    expect((await a.find('rt1'))?.consumed).toBeUndefined();
    await sleep(2100);
    expect((await a.find('rt1'))?.consumed).toBeTypeOf('number');
  });
});
