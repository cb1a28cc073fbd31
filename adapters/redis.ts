import type { Cluster, Redis } from 'ioredis';
import type { Adapter, AdapterPayload } from './types.ts';

/** One Redis server (direct or through Sentinel) or a Redis Cluster. */
export type RedisClient = Redis | Cluster;

export const REDIS_PREFIX = 'latchkey:oidc:';

/** Set of the session ids an account has had; members may be stale, so check before acting. */
export const accountSessionsKey = (accountId: string) =>
  `${REDIS_PREFIX}account:${accountId}:sessions`;

// Marks a payload consumed only if it still exists (an expired key is not revived without a TTL)
// and only the first time (a later consume must not restart the refresh-token reuse grace window).
const CONSUME = `if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('HSETNX', KEYS[1], 'consumed', ARGV[1]) end return 0`;

/**
 * oidc-provider storage in Redis: a hash per payload (`payload` JSON, `consumed` time) under
 * `latchkey:oidc:<Model>:<id>`, with lookup keys for uid and userCode and a set per grant for
 * revokeByGrantId. Every write is one MULTI round trip (no TTL read before writing).
 */
export class RedisAdapter implements Adapter {
  private readonly redis: RedisClient;
  private readonly model: string;
  constructor(redis: RedisClient, model: string) {
    this.redis = redis;
    this.model = model;
  }

  private key(id: string) {
    return `${REDIS_PREFIX}${this.model}:${id}`;
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
    const key = this.key(id);
    // The payload's own key changes atomically; the lookup keys may live in other hash slots
    // (Redis Cluster), so each is written on its own, all sent at once.
    const write = this.redis.multi().del(key).hset(key, 'payload', JSON.stringify(payload));
    if (expiresIn) write.expire(key, expiresIn);
    const writes: Promise<unknown>[] = [write.exec()];
    if (payload.grantId)
      writes.push(this.addToSet(`${REDIS_PREFIX}grant:${payload.grantId}`, key, expiresIn));
    if (this.model === 'Session' && payload.accountId)
      writes.push(this.addToSet(accountSessionsKey(payload.accountId), id, expiresIn));
    if (payload.userCode)
      writes.push(
        this.redis.set(`${REDIS_PREFIX}userCode:${payload.userCode}`, id, 'EX', expiresIn),
      );
    if (payload.uid)
      writes.push(this.redis.set(`${REDIS_PREFIX}uid:${payload.uid}`, id, 'EX', expiresIn));
    await Promise.all(writes);
  }

  /** Adds to an index set that lives as long as its longest-lived member (no TTL read first). */
  private addToSet(setKey: string, member: string, expiresIn: number) {
    const write = this.redis.multi().sadd(setKey, member);
    if (expiresIn) write.expire(setKey, expiresIn, 'NX').expire(setKey, expiresIn, 'GT');
    return write.exec();
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    const [payload, consumed] = await this.redis.hmget(this.key(id), 'payload', 'consumed');
    if (!payload) return undefined;
    const parsed = JSON.parse(payload) as AdapterPayload;
    if (consumed) parsed.consumed = Number(consumed);
    return parsed;
  }

  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    const id = await this.redis.get(`${REDIS_PREFIX}uid:${uid}`);
    return id ? this.find(id) : undefined;
  }

  async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    const id = await this.redis.get(`${REDIS_PREFIX}userCode:${userCode}`);
    return id ? this.find(id) : undefined;
  }

  async consume(id: string): Promise<void> {
    await this.redis.eval(CONSUME, 1, this.key(id), Date.now() / 1000);
  }

  async destroy(id: string): Promise<void> {
    await this.redis.del(this.key(id));
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    const grantKey = `${REDIS_PREFIX}grant:${grantId}`;
    const keys = await this.redis.smembers(grantKey);
    // One DEL per key keeps this valid on Redis Cluster, where keys live in different slots.
    await Promise.all([...keys, grantKey].map((key) => this.redis.del(key)));
  }
}
