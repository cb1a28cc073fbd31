import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Config } from '../config/load.ts';
import type { RedisClient } from '../adapters/redis.ts';

type RedisSettings = Pick<
  Config,
  'redisUrl' | 'redisSentinels' | 'redisSentinelName' | 'redisClusterNodes'
>;

/** Whether short-lived protocol state goes to Redis (a URL, Sentinels or Cluster nodes were given). */
export const usesRedis = (config: RedisSettings) =>
  Boolean(config.redisUrl || config.redisSentinels.length || config.redisClusterNodes.length);

/**
 * A Redis client from the configuration: a Cluster, the master that the Sentinels name (ioredis
 * follows a failover), or one server by URL. With Sentinels or a Cluster, REDIS_URL gives only
 * the password (and, for Sentinels, the database number). Undefined when Redis is not configured.
 */
export function openRedis(
  config: RedisSettings,
  options: RedisOptions = {},
): RedisClient | undefined {
  const url = config.redisUrl ? new URL(config.redisUrl) : undefined;
  const password = url?.password ? decodeURIComponent(url.password) : undefined;
  if (config.redisClusterNodes.length) {
    // The Cluster keeps an offline queue of its own (no command timeout applies there), and
    // ioredis gives each node connection one regardless of redisOptions: say it to the Cluster.
    // Auto-pipelining stays off there: ioredis's Cluster batches fail our scripts ("All keys in
    // the pipeline should belong to the same slots allocation group").
    const {
      lazyConnect,
      enableOfflineQueue,
      enableAutoPipelining: _off,
      ...redisOptions
    } = options;
    return new Cluster(config.redisClusterNodes, {
      ...(lazyConnect !== undefined && { lazyConnect }),
      ...(enableOfflineQueue !== undefined && { enableOfflineQueue }),
      redisOptions: { ...redisOptions, ...(password && { password }) },
    });
  }
  if (config.redisSentinels.length) {
    return new Redis({
      sentinels: config.redisSentinels,
      name: config.redisSentinelName,
      ...(password && { password }),
      ...(url && url.pathname.length > 1 && { db: Number(url.pathname.slice(1)) }),
      ...options,
    });
  }
  return url ? new Redis(config.redisUrl!, options) : undefined;
}

/** Quits after the replies under way; a lazy client that never connected is just dropped. */
export async function closeRedis(redis: RedisClient | undefined): Promise<void> {
  if (!redis) return;
  if (redis.status === 'wait') return redis.disconnect();
  await redis.quit().catch(() => redis.disconnect());
}
