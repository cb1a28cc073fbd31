import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresAccounts, PostgresAdapter, sweepExpired } from '../../adapters/postgres.ts';
import { RedisAccounts, RedisAdapter, type RedisClient } from '../../adapters/redis.ts';
import { withAccountOps, withReuseGrace, type AdapterFactory } from '../../adapters/index.ts';
import { MemoryStore } from '../../adapters/memory.ts';
import { MemoryAccounts, MemoryAdapter } from '../../adapters/memory-adapter.ts';
import { modelsThat } from '../../adapters/models.ts';
import { openDb, type Db } from '../../server/db.ts';
import { migrate } from '../../server/migrate.ts';
import { openRedis } from '../../server/redis.ts';
import { freshPostgresUrl, freshRedisUrl } from '../support/databases.ts';
import { tempEmbeddedDb } from '../support/embedded-db.ts';
import { startRedisCluster } from '../support/services.ts';

/** One store holding every model, as the factory would if it put them all there. */
type Backend = { make: AdapterFactory; close(): Promise<void>; db?: Db };

const postgres = (db: Db) =>
  withAccountOps(
    (m) => new PostgresAdapter(db, m),
    () => new PostgresAccounts(db),
  );
const redisStore = (redis: RedisClient) =>
  withAccountOps(
    (m) => new RedisAdapter(redis, m),
    () => new RedisAccounts(redis),
  );

// The embedded server's split: short-lived models in its memory, grants and refresh tokens in PGlite.
const embeddedServer = (db: Db, store: MemoryStore) => {
  const inMemory = new Set<string>(modelsThat('shortLived'));
  return withAccountOps(
    (m) => (inMemory.has(m) ? new MemoryAdapter(store, m) : new PostgresAdapter(db, m)),
    (m) => (m === 'Session' ? new MemoryAccounts(store) : new PostgresAccounts(db)),
  );
};

const backends: Record<string, () => Promise<Backend>> = {
  'PostgreSQL server': async () => {
    const db = await openDb({ databaseUrl: await freshPostgresUrl(), dataDir: '', poolMax: 4 });
    await migrate(db);
    return { db, make: postgres(db), close: () => db.destroy() };
  },
  PGlite: async () => {
    const { db, cleanup } = await tempEmbeddedDb();
    return { db, make: postgres(db), close: cleanup };
  },
  'memory over PGlite': async () => {
    const { db, cleanup } = await tempEmbeddedDb();
    return { make: embeddedServer(db, new MemoryStore()), close: cleanup };
  },
  Redis: async () => {
    const redis = openRedis(redisSettings({ redisUrl: await freshRedisUrl() }))!;
    return { make: redisStore(redis), close: async () => void (await redis.quit()) };
  },
  // Keys of one payload, its lookups and its account's sets fall in different hash slots.
  'Redis Cluster': async () => {
    const cluster = await startRedisCluster();
    const nodes = cluster.nodes.map((n) => ({ host: '127.0.0.1', port: Number(n.split(':')[1]) }));
    const redis = openRedis(redisSettings({ redisClusterNodes: nodes }))!;
    return {
      make: redisStore(redis),
      close: async () => {
        await redis.quit();
        await cluster.stop();
      },
    };
  },
};

function redisSettings(given: Partial<Parameters<typeof openRedis>[0]>) {
  return {
    redisUrl: '',
    redisSentinels: [],
    redisSentinelName: '',
    redisClusterNodes: [],
    ...given,
  };
}

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
    await backend.make('Session').upsert('short-session', { accountId: 'short-lived' }, 1);
    expect(await a.find('short')).toBeDefined();
    await sleep(2100);
    expect(await backend.make.sessionsOf('short-lived')).toEqual([]);
    expect(await backend.make.endSessions('short-lived')).toBe(0);
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

  describe('account-level operations', () => {
    const account = () => `account-${randomUUID()}`;
    const session = (accountId: string, loginTs = 1_700_000_000) => ({
      kind: 'Session',
      accountId,
      loginTs,
      iat: loginTs,
      exp: loginTs + 3600,
      uid: randomUUID(),
    });
    const ids = (stored: { id: string }[]) => stored.map(({ id }) => id).sort();

    it("lists only an account's live sessions, with what a page shows of them", async () => {
      const [mine, theirs] = [account(), account()];
      const sessions = backend.make('Session');
      await sessions.upsert(`${mine}-laptop`, session(mine), 60);
      await sessions.upsert(`${mine}-phone`, session(mine, 1_700_000_100), 60);
      await sessions.upsert(`${mine}-gone`, session(mine), 60);
      await sessions.destroy(`${mine}-gone`);
      await sessions.upsert(`${theirs}-laptop`, session(theirs), 60);
      const listed = await backend.make.sessionsOf(mine);
      expect(ids(listed)).toEqual([`${mine}-laptop`, `${mine}-phone`]);
      expect(listed.find(({ id }) => id === `${mine}-phone`)?.payload).toMatchObject({
        accountId: mine,
        loginTs: 1_700_000_100,
        iat: 1_700_000_100,
        exp: 1_700_003_700,
      });
      expect(await backend.make.sessionsOf(account())).toEqual([]);
    });

    it('ends every session of an account but the one kept, and no one else’s', async () => {
      const [mine, theirs] = [account(), account()];
      const sessions = backend.make('Session');
      for (const device of ['laptop', 'phone', 'tablet'])
        await sessions.upsert(`${mine}-${device}`, session(mine), 60);
      await sessions.upsert(`${theirs}-laptop`, session(theirs), 60);
      expect(await backend.make.endSessions(mine, { except: `${mine}-phone` })).toBe(2);
      expect(ids(await backend.make.sessionsOf(mine))).toEqual([`${mine}-phone`]);
      expect(await sessions.find(`${mine}-laptop`)).toBeUndefined();
      expect(ids(await backend.make.sessionsOf(theirs))).toEqual([`${theirs}-laptop`]);
      expect(await backend.make.endSessions(mine)).toBe(1);
      expect(await backend.make.sessionsOf(mine)).toEqual([]);
    });

    it('does not end a session since signed in to by another account', async () => {
      const [first, second] = [account(), account()];
      const sessions = backend.make('Session');
      await sessions.upsert('shared-browser', session(first), 60);
      await sessions.upsert('shared-browser', session(second), 60);
      expect(await backend.make.sessionsOf(first)).toEqual([]);
      expect(await backend.make.endSessions(first)).toBe(0);
      expect(await sessions.find('shared-browser')).toMatchObject({ accountId: second });
      expect(ids(await backend.make.sessionsOf(second))).toEqual(['shared-browser']);
    });

    it('ends one session of an account, never one of another account', async () => {
      const [mine, theirs] = [account(), account()];
      const sessions = backend.make('Session');
      for (const device of ['laptop', 'phone'])
        await sessions.upsert(`${mine}-${device}`, session(mine), 60);
      await sessions.upsert(`${theirs}-laptop`, session(theirs), 60);
      expect(await backend.make.endSessions(mine, { only: `${theirs}-laptop` })).toBe(0);
      expect(await sessions.find(`${theirs}-laptop`)).toMatchObject({ accountId: theirs });
      expect(await backend.make.endSessions(mine, { only: `${mine}-phone` })).toBe(1);
      expect(ids(await backend.make.sessionsOf(mine))).toEqual([`${mine}-laptop`]);
      expect(await backend.make.endSessions(mine, { only: `${mine}-phone` })).toBe(0);
    });

    it("lists an account's grants with the client each is for", async () => {
      const [mine, theirs] = [account(), account()];
      const grants = backend.make('Grant');
      const grant = (accountId: string, clientId: string) =>
        ({ kind: 'Grant', accountId, clientId, iat: 1_700_000_000, exp: 1_800_000_000 }) as const;
      await grants.upsert(`${mine}-mail`, grant(mine, 'mail-app'), 60);
      await grants.upsert(`${mine}-wiki`, grant(mine, 'wiki'), 60);
      await grants.upsert(`${theirs}-mail`, grant(theirs, 'mail-app'), 60);
      const listed = await backend.make.grantsOf(mine);
      expect(ids(listed)).toEqual([`${mine}-mail`, `${mine}-wiki`]);
      expect(listed.map(({ payload }) => payload.clientId).sort()).toEqual(['mail-app', 'wiki']);
      expect(listed[0]?.payload).toMatchObject({ accountId: mine, iat: 1_700_000_000 });
    });

    it('revokes a grant with its refresh tokens, access tokens and codes', async () => {
      const owner = account();
      const [revoked, kept] = [`${owner}-revoked`, `${owner}-kept`];
      const tied = [
        'RefreshToken',
        'AccessToken',
        'AuthorizationCode',
        'DeviceCode',
        'BackchannelAuthenticationRequest',
      ];
      for (const grantId of [revoked, kept]) {
        await backend.make('Grant').upsert(grantId, { accountId: owner, clientId: 'app' }, 60);
        for (const model of tied)
          await backend.make(model).upsert(`${grantId}-${model}`, { grantId }, 60);
      }
      await backend.make.revokeGrant(revoked);
      for (const model of tied) {
        expect(await backend.make(model).find(`${revoked}-${model}`)).toBeUndefined();
        expect(await backend.make(model).find(`${kept}-${model}`)).toBeDefined();
      }
      expect(ids(await backend.make.grantsOf(owner))).toEqual([kept]);
    });
  });
});

describe('Redis, after it forgot the scripts (a restart, SCRIPT FLUSH)', () => {
  it('writes, finds, consumes and takes as before: each script is sent again', async () => {
    const redis = openRedis(redisSettings({ redisUrl: await freshRedisUrl() }))!;
    try {
      const make = redisStore(redis);
      await make('Session').upsert('before', { uid: 'uid-before', accountId: 'u1' }, 60);
      await redis.script('FLUSH');
      await make('Session').upsert('after', { uid: 'uid-after', accountId: 'u1' }, 60);
      expect(await make('Session').findByUid('uid-after')).toMatchObject({ accountId: 'u1' });
      await redis.script('FLUSH');
      await make('AuthorizationCode').upsert('code', { grantId: 'g1' }, 60);
      await redis.script('FLUSH');
      expect(await make('AuthorizationCode').consumeOnce('code')).toBe(true);
      await redis.script('FLUSH');
      expect(await make('Session').take('before')).toMatchObject({ accountId: 'u1' });
    } finally {
      await redis.quit();
    }
  });
});
