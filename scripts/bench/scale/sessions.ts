// 100,000 active sessions in Redis: what each costs Redis, and whether the server's RSS moves.
// Real sign-ins would take ~an hour at this machine's argon2 rate, so a few are real and the
// rest are clones of a real one: its payload under fresh ids (its id, uid and account changed),
// written by the server's own Redis adapter with the real session's remaining TTL, so every
// clone has the keys a real session has (payload hash, uid lookup, the account's session set).
import { randomBytes, randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { RedisAdapter, REDIS_PREFIX } from '../../../adapters/redis.ts';
import type { AdapterPayload } from '../../../adapters/types.ts';
import { Browser } from '../http-client.ts';
import { passwordLoginFlow, runJobs, sessionFlow, type RelyingParty } from '../load.ts';
import { fmt } from '../format.ts';
import type { Cleanup } from '../process.ts';
import { startTarget } from '../target.ts';

export const SESSIONS = 100_000;
const BATCH = 500;
const AFTER_FLOWS = 200;
const REAL_SIGN_INS = AFTER_FLOWS / 2;

export type SessionsResult = {
  realSessions: number;
  payloadBytes: number;
  bytesPerSession: number;
  memoryUsageBytes: number;
  keysPerSession: number;
  cloneSeconds: number;
  rss: { before: number; afterClones: number; afterFlows: number };
};

async function usedMemory(redis: Redis): Promise<number> {
  const info = await redis.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)![1]);
}

async function sessionKeys(redis: Redis): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(
      cursor,
      'MATCH',
      `${REDIS_PREFIX}Session:*`,
      'COUNT',
      1000,
    );
    keys.push(...found);
    cursor = next;
  } while (cursor !== '0');
  return keys;
}

export async function benchSessions(cleanup: Cleanup, note: (l: string) => void) {
  const target = await startTarget('postgres+redis', cleanup);
  const redis = new Redis(target.env.REDIS_URL!);
  cleanup.defer(() => redis.quit());
  const rp: RelyingParty = { issuer: target.url, client: target.web };
  const fresh = async () => () => passwordLoginFlow(rp);
  const signedIn = async () => {
    const browser = new Browser();
    await passwordLoginFlow(rp, browser);
    return () => sessionFlow(rp, browser);
  };

  // The server at work: sign-ins and session flows, once before the clones (so its RSS is
  // warm: JIT, pools, caches) and once after, with 100k sessions held.
  const work = async () => {
    const signIns = await runJobs(AFTER_FLOWS / 2, 2, fresh);
    const flows = await runJobs(AFTER_FLOWS, 2, signedIn);
    const failure = signIns.firstFailure ?? flows.firstFailure;
    if (failure) throw new Error(`sign-ins or session flows failed: ${failure}`);
    target.assertAlive();
  };
  await work();
  const real = await sessionKeys(redis);
  if (real.length < REAL_SIGN_INS) throw new Error(`only ${real.length} sessions in Redis`);
  if (!real.length) throw new Error('no session in Redis after the sign-ins');
  const model = real[0]!;
  const payload = JSON.parse((await redis.hget(model, 'payload'))!) as AdapterPayload;
  const ttl = await redis.ttl(model);
  const idLength = model.slice(`${REDIS_PREFIX}Session:`.length).length;
  note(`sessions: ${real.length} real sessions; cloning one (TTL ${ttl} s) ${fmt(SESSIONS)} times`);

  const rssBefore = target.rssMiB();
  const memBefore = await usedMemory(redis);
  const adapter = new RedisAdapter(redis, 'Session');
  const t0 = performance.now();
  let lastId = '';
  for (let done = 0; done < SESSIONS; done += BATCH) {
    await Promise.all(
      Array.from({ length: Math.min(BATCH, SESSIONS - done) }, () => {
        const id = randomBytes(idLength).toString('base64url').slice(0, idLength);
        lastId = id;
        const clone = {
          ...payload,
          jti: id,
          uid: randomBytes(16).toString('base64url'),
          accountId: randomUUID(),
        };
        return adapter.upsert(id, clone, ttl);
      }),
    );
  }
  const cloneSeconds = (performance.now() - t0) / 1000;
  const memAfter = await usedMemory(redis);
  const cloned = JSON.parse(
    (await redis.hget(`${REDIS_PREFIX}Session:${lastId}`, 'payload'))!,
  ) as AdapterPayload;
  const keysOfOne = [
    `${REDIS_PREFIX}Session:${lastId}`,
    `${REDIS_PREFIX}uid:${String(cloned.uid)}`,
    `${REDIS_PREFIX}account:${String(cloned.accountId)}:sessions`,
  ];
  let memoryUsageBytes = 0;
  let keysPerSession = 0;
  for (const key of keysOfOne) {
    const bytes = (await redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0')) as number | null;
    if (bytes === null) continue;
    memoryUsageBytes += bytes;
    keysPerSession++;
  }
  const rssAfterClones = target.rssMiB();

  await work();
  return {
    realSessions: real.length,
    payloadBytes: JSON.stringify(payload).length,
    bytesPerSession: (memAfter - memBefore) / SESSIONS,
    memoryUsageBytes,
    keysPerSession,
    cloneSeconds,
    rss: { before: rssBefore, afterClones: rssAfterClones, afterFlows: target.rssMiB() },
  } satisfies SessionsResult;
}

export function sessionsReport(r: SessionsResult): string[] {
  const kb = r.bytesPerSession / 1024;
  const growth = r.rss.afterFlows - r.rss.before;
  return [
    `## ${fmt(SESSIONS)} active sessions in Redis`,
    '',
    `${r.realSessions} sessions from real password sign-ins (the warm-up round below); one of them (payload ${fmt(r.payloadBytes)} bytes of JSON) cloned ${fmt(SESSIONS)} times under fresh ids, uids and accounts through the server's Redis adapter with its remaining TTL (${fmt(r.cloneSeconds, 1)} s).`,
    '',
    '| measure | value |',
    '| --- | --: |',
    `| Redis used_memory delta / sessions | ${fmt(r.bytesPerSession)} bytes (${fmt(kb, 2)} KiB) |`,
    `| MEMORY USAGE of one session's ${r.keysPerSession} keys (payload, uid lookup, account set) | ${fmt(r.memoryUsageBytes)} bytes |`,
    `| server RSS before the clones (after one round of the flows below) | ${fmt(r.rss.before, 1)} MiB |`,
    `| server RSS after the clones | ${fmt(r.rss.afterClones, 1)} MiB |`,
    `| server RSS after the clones and another ${AFTER_FLOWS / 2} sign-ins and ${AFTER_FLOWS} session flows | ${fmt(r.rss.afterFlows, 1)} MiB |`,
    '',
    `Bytes per session ≤ 2.5 KiB: ${kb <= 2.5 ? 'met' : '**missed**'}. Server RSS ${growth >= 0 ? '+' : ''}${fmt(growth, 1)} MiB across the run (the server keeps no session in memory; it reads each from Redis per request).`,
    '',
  ];
}
