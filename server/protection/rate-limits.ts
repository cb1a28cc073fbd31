import { createHash } from 'node:crypto';
import ipaddr from 'ipaddr.js';
import {
  RateLimiterMemory,
  RateLimiterPostgres,
  RateLimiterRedis,
  RateLimiterRes,
  type RateLimiterAbstract,
} from 'rate-limiter-flexible';
import { deleteInBatches } from '../../adapters/postgres.ts';
import type { RedisClient } from '../../adapters/redis.ts';
import type { Limit } from '../../config/setting.ts';
import type { RateLimitName } from '../../config/protection.ts';
import type { Db } from '../db.ts';
import type { Logger } from '../log.ts';
import { NO_METRICS, type Metrics } from '../metrics/metrics.ts';

export type Verdict = { ok: true } | { ok: false; retryAfterSeconds: number };
export type LimitKey = [RateLimitName, string];

const OK: Verdict = { ok: true };
const refused = (res: RateLimiterRes): Verdict => ({
  ok: false,
  retryAfterSeconds: Math.max(1, Math.ceil(res.msBeforeNext / 1000)),
});

/**
 * A client address as a limiter key. An IPv6 host is given a whole /64 (RFC 7421), so a new
 * address per attempt costs it nothing: it is counted by its /64. IPv4 written as IPv6
 * (::ffff:a.b.c.d) is the IPv4 address.
 */
export function senderKey(ip: string): string {
  if (!ipaddr.isValid(ip)) return ip;
  const address = ipaddr.parse(ip);
  if (address.kind() === 'ipv4') return address.toString();
  const v6 = address as ipaddr.IPv6;
  if (v6.isIPv4MappedAddress()) return v6.toIPv4Address().toString();
  return `${v6.parts
    .slice(0, 4)
    .map((part) => part.toString(16))
    .join(':')}::/64`;
}

/**
 * A typed login as a limiter key: the same for any spelling case, and no address in Redis or
 * logs. NFKC first: a directory takes fullwidth or mathematical letters (`ｂｏｂ`, `𝐛𝐨𝐛`) for the
 * login itself (RFC 4518 §2.3, NFKC), so each spelling must not be a limit of its own.
 */
export function accountKey(login: string): string {
  const folded = login.trim().normalize('NFKC').toLowerCase();
  return createHash('sha256').update(folded).digest('base64url').slice(0, 22);
}

/** A known account as a limiter key: the account, whichever of its logins was typed. */
export function userKey(user: { id: string }): string {
  return `u:${user.id}`;
}

/**
 * rate-limiter-flexible speaks node-postgres ({ text, values } with $1 placeholders); this lets it
 * run its statements through knex, so the same code works on a PostgreSQL server and on PGlite.
 */
function knexAsPgClient(db: Db) {
  return {
    async query({ text, values = [] }: { text: string; values?: unknown[] }) {
      const bindings: unknown[] = [];
      const sql = text.replace(/\$(\d+)/g, (_, n: string) => {
        bindings.push(values[Number(n) - 1]);
        return '?';
      });
      const { rows } = await db.raw(sql, bindings as never[]);
      return { rows, rowCount: rows.length };
    },
  };
}

type Deps = {
  limits: Readonly<Record<RateLimitName, Limit | undefined>>;
  db: Db;
  redis?: RedisClient | undefined;
  /** Counters in this process: the embedded server, the one process that owns its database. */
  inProcess?: boolean | undefined;
  log: Logger;
  metrics?: Metrics | undefined;
};

/**
 * The rate limits of config, shared by every process: counters in Redis when configured, else
 * in PostgreSQL's rate_limits table; the embedded server, the only process on its database,
 * keeps them in memory (a restart starts them afresh; lockouts live on the user row). Keys are
 * latchkey:rl:<limit>:<key>. When the store fails, requests are let through and the failure
 * logged: a limiter outage must not be a sign-in outage.
 */
export function createRateLimits({
  limits,
  db,
  redis,
  inProcess = false,
  log,
  metrics = NO_METRICS,
}: Deps) {
  const limiters = new Map<RateLimitName, RateLimiterAbstract>();
  const pg = knexAsPgClient(db);
  for (const [name, limit] of Object.entries(limits) as [RateLimitName, Limit | undefined][]) {
    if (!limit) continue;
    const common = {
      keyPrefix: `latchkey:rl:${name}`,
      points: limit.points,
      duration: limit.seconds,
    };
    limiters.set(
      name,
      redis
        ? new RateLimiterRedis({ ...common, storeClient: redis })
        : inProcess
          ? new RateLimiterMemory(common)
          : new RateLimiterPostgres({
              ...common,
              storeClient: pg,
              storeType: 'client',
              tableName: 'rate_limits',
              tableCreated: true,
              clearExpiredByTimeout: false,
            }),
    );
  }

  // The keys are asked at once: their round trips overlap.
  async function each(
    keys: LimitKey[],
    step: (limiter: RateLimiterAbstract, key: string, name: RateLimitName) => Promise<Verdict>,
  ): Promise<Verdict> {
    const verdicts = await Promise.all(
      keys.map(async ([name, key]): Promise<Verdict> => {
        const limiter = limiters.get(name);
        if (!limiter) return OK;
        try {
          return await step(limiter, key, name);
        } catch (err) {
          if (err instanceof RateLimiterRes) {
            metrics.rateLimitRefusals.inc({ limit: name });
            return refused(err);
          }
          log.warn({ err, limit: name }, 'rate limiter unavailable; request let through');
          return OK;
        }
      }),
    );
    let verdict = OK;
    for (const one of verdicts)
      if (!one.ok && (verdict.ok || one.retryAfterSeconds > verdict.retryAfterSeconds))
        verdict = one;
    return verdict;
  }

  /**
   * Gives back one reserved point per key (a success, or an outage that proved nothing); says
   * whether every key is now empty, so a sign-in knows there is nothing left to clear.
   */
  async function refund(...keys: LimitKey[]): Promise<{ empty: boolean }> {
    let empty = true;
    await Promise.all(
      keys.map(async ([name, key]) => {
        const limiter = limiters.get(name);
        if (!limiter) return;
        try {
          const res = await limiter.reward(key, 1);
          if (res.consumedPoints > 0) empty = false;
        } catch (err) {
          empty = false;
          log.warn({ err, limit: name }, 'rate limiter refund failed');
        }
      }),
    );
    return { empty };
  }

  return {
    /** Counts one request against each key; refused when any of them is over its limit. */
    consume: (...keys: LimitKey[]) =>
      each(keys, async (limiter, key) => (await limiter.consume(key), OK)),

    refund,

    /**
     * Takes one point from every key at once, before the work it guards (each limiter's consume
     * is one atomic step in its store, so of a burst only `points` get through). When a key
     * refuses, every point taken is given back: a refused attempt costs nothing.
     */
    async reserve(...keys: LimitKey[]): Promise<Verdict> {
      const taken: LimitKey[] = [];
      const verdict = await each(keys, async (limiter, key, name) => {
        try {
          await limiter.consume(key);
        } finally {
          // A refused consume counted too; an outage counted nothing, and a refund fails alike.
          taken.push([name, key]);
        }
        return OK;
      });
      if (!verdict.ok) await refund(...taken);
      return verdict;
    },

    /**
     * Counts one for a key and says what is left: 0 remaining means the next request is over.
     * Undefined when the limit is off or its store failed.
     */
    async count(
      name: RateLimitName,
      key: string,
    ): Promise<{ remaining: number; retryAfterSeconds: number } | undefined> {
      const limiter = limiters.get(name);
      if (!limiter) return undefined;
      const state = (res: RateLimiterRes) => ({
        remaining: res.remainingPoints,
        retryAfterSeconds: Math.max(1, Math.ceil(res.msBeforeNext / 1000)),
      });
      try {
        return state(await limiter.consume(key));
      } catch (err) {
        if (err instanceof RateLimiterRes) return state(err);
        log.warn({ err, limit: name }, 'rate limiter unavailable; request let through');
        return undefined;
      }
    },

    /** Forgets a key's count (a successful sign-in clears the account's failures). */
    async reset(name: RateLimitName, key: string): Promise<void> {
      await limiters
        .get(name)
        ?.delete(key)
        .catch((err: unknown) => log.warn({ err, limit: name }, 'rate limiter reset failed'));
    },

    /** Deletes PostgreSQL counters that expired over an hour ago (Redis expires its own). */
    async sweep(trx: Db = db): Promise<void> {
      if (!redis && !inProcess)
        await deleteInBatches(trx, 'rate_limits', 'expire < ?', [Date.now() - 3600_000]);
    },
  };
}

export type RateLimits = ReturnType<typeof createRateLimits>;
