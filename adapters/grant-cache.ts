import type { AdapterPayload, StorageAdapter } from './types.ts';

// Bounds: a grant is about 1 kB; one read is kept at most this long, however it is used.
const MAX_ENTRIES = 5_000;
const MAX_AGE_MS = 60_000;

/**
 * Bumped by every change to a stored grant in this process, whichever way it is made (the
 * adapter, or SQL that revokes grants: postgres.ts). A read taken before a change is never kept
 * after it.
 */
let generation = 0;

/** Called before and after any statement that changes or deletes Grant rows. */
export function grantsChanged(): void {
  generation++;
}

type Cached = { json: string; generation: number; readAt: number; expiresAt: number | undefined };

/**
 * Grants read from the embedded database kept in memory: a code flow reads its grant at the
 * authorization and again at the token request, each a PGlite query on the server's own thread.
 * Only where one process owns the database (the embedded default) is every change seen here;
 * with PostgreSQL, other processes change grants too, and nothing is kept.
 */
export function withGrantCache(inner: StorageAdapter): StorageAdapter {
  const cache = new Map<string, Cached>();
  let cachedGeneration = generation;
  const fresh = (entry: Cached, now: number) =>
    entry.generation === generation &&
    now - entry.readAt < MAX_AGE_MS &&
    (entry.expiresAt === undefined || entry.expiresAt > now);
  const changing = async <T>(change: () => Promise<T>): Promise<T> => {
    grantsChanged();
    try {
      return await change();
    } finally {
      grantsChanged();
    }
  };

  return Object.assign(Object.create(inner) as StorageAdapter, {
    async find(id: string): Promise<AdapterPayload | undefined> {
      if (cachedGeneration !== generation) {
        cache.clear();
        cachedGeneration = generation;
      }
      const now = Date.now();
      const hit = cache.get(id);
      if (hit && fresh(hit, now)) return JSON.parse(hit.json) as AdapterPayload;
      cache.delete(id);
      const readFrom = generation;
      const payload = (await inner.find(id)) as AdapterPayload | undefined;
      // Kept only if no change began or ended while it was read.
      if (payload && readFrom === generation) {
        if (cache.size >= MAX_ENTRIES) cache.delete(cache.keys().next().value!);
        const exp = typeof payload.exp === 'number' ? payload.exp * 1000 : undefined;
        cache.set(id, { json: JSON.stringify(payload), generation, readAt: now, expiresAt: exp });
      }
      return payload;
    },
    upsert: (id: string, payload: AdapterPayload, expiresIn: number) =>
      changing(() => inner.upsert(id, payload, expiresIn)),
    destroy: (id: string) => changing(() => inner.destroy(id)),
    take: (id: string) => changing(() => inner.take(id)),
    consume: (id: string) => changing(() => inner.consume(id)),
    consumeOnce: (id: string, until?: number) => changing(() => inner.consumeOnce(id, until)),
    revokeByGrantId: (grantId: string) => changing(() => inner.revokeByGrantId(grantId)),
  });
}
