import type { ChainableCommander, Cluster, Redis } from 'ioredis';
import type { AccountStore, AdapterPayload, EndSessions, Stored, StorageAdapter } from './types.ts';

/** One Redis server (direct or through Sentinel) or a Redis Cluster. */
export type RedisClient = Redis | Cluster;

export const REDIS_PREFIX = 'latchkey:oidc:';

const payloadKey = (model: string, id: string) => `${REDIS_PREFIX}${model}:${id}`;

/** The models listed per account (AccountStore), and the name of each one's set. */
const ACCOUNT_SETS = { Session: 'sessions', Grant: 'grants' } as const;
type ListedModel = keyof typeof ACCOUNT_SETS;
const isListed = (model: string): model is ListedModel => Object.hasOwn(ACCOUNT_SETS, model);

/** Set of the ids an account has had of a model; members may be stale, so check before acting. */
const accountSetKey = (model: ListedModel, accountId: string) =>
  `${REDIS_PREFIX}account:${accountId}:${ACCOUNT_SETS[model]}`;

// Writes a payload: KEYS[1] its hash, replaced whole (ARGV[1] the JSON, ARGV[2] its TTL in
// seconds, 0: none); KEYS[2..] its index keys, each with two more ARGV: 'set' and a member
// (a set that lives as long as its longest-lived member), or 'id' and the id a lookup key names.
// One script is one command: a MULTI of the same writes cost 4x the client's CPU (measured).
const UPSERT = `local ttl = tonumber(ARGV[2])
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'payload', ARGV[1])
if ttl > 0 then redis.call('EXPIRE', KEYS[1], ttl) end
for i = 2, #KEYS do
  local kind, value = ARGV[2 * i - 1], ARGV[2 * i]
  if kind == 'set' then
    redis.call('SADD', KEYS[i], value)
    if ttl > 0 then
      redis.call('EXPIRE', KEYS[i], ttl, 'NX')
      redis.call('EXPIRE', KEYS[i], ttl, 'GT')
    end
  elseif ttl > 0 then
    redis.call('SET', KEYS[i], value, 'EX', ttl)
  else
    redis.call('SET', KEYS[i], value)
  end
end
return 1`;

// Marks a payload consumed only if it still exists (an expired key is not revived without a TTL)
// and only the first time (a later consume must not restart the refresh-token reuse grace window).
const CONSUME = `if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('HSETNX', KEYS[1], 'consumed', ARGV[1]) end return 0`;

// Reads a payload and deletes it in one step.
const TAKE = `local payload = redis.call('HGET', KEYS[1], 'payload') if payload then redis.call('DEL', KEYS[1]) end return payload`;

// Deletes a payload only if it still belongs to the account: a session may have been signed in
// to by another account since its id was added to this one's set.
const DESTROY_IF_OF = `local payload = redis.call('HGET', KEYS[1], 'payload') if payload and cjson.decode(payload).accountId == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

// A lookup key (uid, userCode) names a payload's id: read both in one round trip. The payload's
// key is not declared, which one server allows and a Cluster would not.
const FOLLOW = `local id = redis.call('GET', KEYS[1]) if not id then return nil end return redis.call('HMGET', ARGV[1] .. id, 'payload', 'consumed')`;

const SCRIPTS = {
  latchkeyUpsert: UPSERT,
  latchkeyConsume: CONSUME,
  latchkeyTake: TAKE,
  latchkeyDestroyIfOf: DESTROY_IF_OF,
  latchkeyFollow: FOLLOW,
};
type Script = (numberOfKeys: number, ...keysAndArgs: (string | number)[]) => Promise<unknown>;
const scripted = new WeakSet<RedisClient>();

/**
 * The scripts as commands of the client: each is sent by its hash (EVALSHA), its text only
 * when Redis does not have it yet (after a restart, ioredis sends it again).
 */
function scriptsOf(redis: RedisClient): Record<keyof typeof SCRIPTS, Script> {
  if (!scripted.has(redis)) {
    for (const [name, lua] of Object.entries(SCRIPTS)) redis.defineCommand(name, { lua });
    scripted.add(redis);
  }
  return redis as unknown as Record<keyof typeof SCRIPTS, Script>;
}

/**
 * oidc-provider storage in Redis: a hash per payload (`payload` JSON, `consumed` time) under
 * `latchkey:oidc:<Model>:<id>`, with lookup keys for uid and userCode and a set per grant for
 * revokeByGrantId. Every write is one script, one round trip (no TTL read before writing).
 */
export class RedisAdapter implements StorageAdapter {
  private readonly redis: RedisClient;
  private readonly model: string;
  constructor(redis: RedisClient, model: string) {
    this.redis = redis;
    this.model = model;
  }

  private key(id: string) {
    return payloadKey(this.model, id);
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
    const key = this.key(id);
    const index: IndexEntry[] = [];
    if (payload.grantId) index.push([`${REDIS_PREFIX}grant:${payload.grantId}`, 'set', key]);
    if (isListed(this.model) && payload.accountId)
      index.push([accountSetKey(this.model, payload.accountId), 'set', id]);
    if (payload.userCode) index.push([`${REDIS_PREFIX}userCode:${payload.userCode}`, 'id', id]);
    if (payload.uid) index.push([`${REDIS_PREFIX}uid:${payload.uid}`, 'id', id]);
    const json = JSON.stringify(payload);
    // The payload and its index keys change in one step. On a Cluster the index keys may live in
    // other hash slots than the payload's: each is written by a call of its own, all at once.
    const together = this.redis.isCluster ? [] : index;
    const apart = this.redis.isCluster ? index : [];
    await Promise.all([
      scriptsOf(this.redis).latchkeyUpsert(
        1 + together.length,
        key,
        ...together.map(([indexKey]) => indexKey),
        json,
        expiresIn ?? 0,
        ...together.flatMap(([, kind, value]) => [kind, value]),
      ),
      ...apart.map((entry) => this.writeIndex(entry, expiresIn)),
    ]);
  }

  /** One index key alone, as UPSERT writes it (on a Cluster). */
  private async writeIndex([indexKey, kind, value]: IndexEntry, expiresIn: number) {
    const write = this.redis.multi();
    if (kind === 'set') addToSet(write, indexKey, value, expiresIn);
    else if (expiresIn) write.set(indexKey, value, 'EX', expiresIn);
    else write.set(indexKey, value);
    // exec() reports a command's own error in its reply rather than by rejecting.
    for (const [err] of (await write.exec()) ?? []) if (err) throw err;
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    return parsePayload(await this.redis.hmget(this.key(id), 'payload', 'consumed'));
  }

  findByUid(uid: string): Promise<AdapterPayload | undefined> {
    return this.findByLookup(`${REDIS_PREFIX}uid:${uid}`);
  }

  findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    return this.findByLookup(`${REDIS_PREFIX}userCode:${userCode}`);
  }

  /** Follows a lookup key to its payload: in one script on one server, in two steps on a Cluster. */
  private async findByLookup(lookupKey: string): Promise<AdapterPayload | undefined> {
    if (this.redis.isCluster) {
      const id = await this.redis.get(lookupKey);
      return id ? this.find(id) : undefined;
    }
    const found = (await scriptsOf(this.redis).latchkeyFollow(
      1,
      lookupKey,
      this.key(''),
    )) as Fields | null;
    return found ? parsePayload(found) : undefined;
  }

  async consume(id: string): Promise<void> {
    await this.consumeOnce(id);
  }

  async consumeOnce(id: string): Promise<boolean> {
    const consumed = scriptsOf(this.redis).latchkeyConsume(1, this.key(id), Date.now() / 1000);
    return (await consumed) === 1;
  }

  async destroy(id: string): Promise<void> {
    await this.redis.del(this.key(id));
  }

  async take(id: string): Promise<AdapterPayload | undefined> {
    const payload = (await scriptsOf(this.redis).latchkeyTake(1, this.key(id))) as string | null;
    return payload ? (JSON.parse(payload) as AdapterPayload) : undefined;
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    const grantKey = `${REDIS_PREFIX}grant:${grantId}`;
    const keys = await this.redis.smembers(grantKey);
    // One DEL per key keeps this valid on Redis Cluster, where keys live in different slots.
    await Promise.all([...keys, grantKey].map((key) => this.redis.del(key)));
  }
}

/**
 * An account's sessions and grants in Redis, through its per-account sets: no SCAN, which a
 * Cluster could only run node by node. Each key gets a command of its own, so the set and the
 * payloads it names may live in different hash slots.
 */
export class RedisAccounts implements AccountStore {
  private readonly redis: RedisClient;
  constructor(redis: RedisClient) {
    this.redis = redis;
  }

  sessionsOf(accountId: string): Promise<Stored[]> {
    return this.ofAccount('Session', accountId);
  }

  grantsOf(accountId: string): Promise<Stored[]> {
    return this.ofAccount('Grant', accountId);
  }

  async endSessions(accountId: string, { except, only }: EndSessions = {}) {
    const setKey = accountSetKey('Session', accountId);
    const ended = await Promise.all(
      (only ? [only] : await this.redis.smembers(setKey))
        .filter((id) => id !== except)
        .map(async (id) => {
          const deleted = await scriptsOf(this.redis).latchkeyDestroyIfOf(
            1,
            payloadKey('Session', id),
            accountId,
          );
          // Gone, ended, or another account's now: either way no longer one of this account's.
          await this.redis.srem(setKey, id);
          return deleted === 1;
        }),
    );
    return ended.filter(Boolean).length;
  }

  private async ofAccount(model: ListedModel, accountId: string): Promise<Stored[]> {
    const store = new RedisAdapter(this.redis, model);
    const ids = await this.redis.smembers(accountSetKey(model, accountId));
    const found = await Promise.all(ids.map(async (id) => ({ id, payload: await store.find(id) })));
    // A member may have expired, been destroyed, or since be another account's.
    return found.filter((entry): entry is Stored => entry.payload?.accountId === accountId);
  }
}

type Fields = (string | null)[];

/** An index key of a payload: a set it joins, or a lookup key that names its id. */
type IndexEntry = [key: string, kind: 'set' | 'id', value: string];

function parsePayload([payload, consumed]: Fields): AdapterPayload | undefined {
  if (!payload) return undefined;
  const parsed = JSON.parse(payload) as AdapterPayload;
  if (consumed) parsed.consumed = Number(consumed);
  return parsed;
}

/** Adds to an index set that lives as long as its longest-lived member (no TTL read first). */
function addToSet(write: ChainableCommander, setKey: string, member: string, expiresIn: number) {
  write.sadd(setKey, member);
  if (expiresIn) write.expire(setKey, expiresIn, 'NX').expire(setKey, expiresIn, 'GT');
}
