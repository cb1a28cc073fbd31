import { Redis, type RedisOptions } from 'ioredis';
import type { Config } from '../config/load.ts';

type RedisSettings = Pick<Config, 'redisUrl' | 'redisSentinels' | 'redisSentinelName'>;

/** Whether short-lived protocol state goes to Redis (a URL or Sentinels were given). */
export const usesRedis = (config: RedisSettings) =>
  Boolean(config.redisUrl || config.redisSentinels.length);

/**
 * A Redis client from the configuration: one server by URL, or the master that the Sentinels
 * name (ioredis follows a failover). Undefined when Redis is not configured.
 */
export function openRedis(config: RedisSettings, options: RedisOptions = {}): Redis | undefined {
  if (config.redisSentinels.length) {
    const url = config.redisUrl ? new URL(config.redisUrl) : undefined;
    return new Redis({
      sentinels: config.redisSentinels,
      name: config.redisSentinelName,
      ...(url?.password && { password: decodeURIComponent(url.password) }),
      ...(url && url.pathname.length > 1 && { db: Number(url.pathname.slice(1)) }),
      ...options,
    });
  }
  return config.redisUrl ? new Redis(config.redisUrl, options) : undefined;
}
