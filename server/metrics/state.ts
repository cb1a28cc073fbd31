import type { Db } from '../db.ts';
import type { RedisClient } from '../../adapters/redis.ts';
import type { KeyManager } from '../keys/manager.ts';
import type { ReadinessCheck } from '../health.ts';
import type { Metrics } from './metrics.ts';

const DAY_SECONDS = 86_400;

type Pool = { numUsed(): number; numFree(): number; numPendingAcquires(): number };

/**
 * Gauges of state held elsewhere, read at each scrape: the database pool, the Redis connection,
 * readiness, and the signing keys' stages and next scheduled rotation.
 */
export function sampleState(
  metrics: Metrics,
  deps: {
    db: Db;
    redis: RedisClient | undefined;
    ready: ReadinessCheck;
    keys: KeyManager;
    keySchedule: { rotationDays: number; announceSeconds: number };
  },
): void {
  const { db, redis, ready, keys, keySchedule } = deps;
  metrics.onScrape(() => {
    // tarn, knex's pool (PGlite's client has one too).
    const pool = (db.client as { pool?: Pool }).pool;
    if (pool) {
      metrics.dbPool.set({ state: 'used' }, pool.numUsed());
      metrics.dbPool.set({ state: 'free' }, pool.numFree());
      metrics.dbPool.set({ state: 'pending' }, pool.numPendingAcquires());
    }
    if (redis) metrics.redisUp.set({}, redis.status === 'ready' ? 1 : 0);
  });
  metrics.onScrape(async () => {
    const { ready: ok, checks } = await ready();
    for (const [check, result] of Object.entries(checks))
      metrics.ready.set({ check }, result === 'ok' ? 1 : 0);
    metrics.ready.set({ check: 'all' }, ok ? 1 : 0);
  });
  metrics.onScrape(() => {
    const { keys: all } = keys.current();
    for (const state of ['announced', 'active', 'retiring'] as const)
      metrics.signingKeys.set({ state }, all.filter((k) => k.state === state).length);
    // As the key manager decides: new keys are announced announceSeconds before the newest
    // one is rotationDays old.
    if (keySchedule.rotationDays > 0 && all.length) {
      const latest = Math.max(...all.map((k) => k.activateAt.getTime() / 1000));
      const next = latest + keySchedule.rotationDays * DAY_SECONDS - keySchedule.announceSeconds;
      metrics.nextKeyRotation.set({}, next);
    }
  });
}
