import type { Knex } from 'knex';
import { withGrantCache } from './grant-cache.ts';
import type { MemoryStore } from './memory.ts';
import { MemoryAccounts, MemoryAdapter } from './memory-adapter.ts';
import { modelsThat } from './models.ts';
import { answeringOutages } from './outages.ts';
import { PostgresAccounts, PostgresAdapter } from './postgres.ts';
import { RedisAccounts, RedisAdapter, type RedisClient } from './redis.ts';
import { withDeferredConsume } from './refresh-rotation.ts';
import type {
  AccountStore,
  Adapter,
  AdapterPayload,
  EndSessions,
  StorageAdapter,
} from './types.ts';

const SHORT_LIVED = new Set<string>(modelsThat('shortLived'));
const GRANT_MODELS = modelsThat('ofGrant');

export type AdapterDeps = {
  db: Knex;
  redis?: RedisClient | undefined;
  /**
   * Where the short-lived models live without Redis, in the one process that owns the embedded
   * database (write-behind.ts); else in the database.
   */
  memory?: MemoryStore | undefined;
  /** Reads a registered client's metadata (secret unsealed); the Client model is read-only here. */
  findClient: (clientId: string) => Promise<AdapterPayload | undefined>;
  refreshReuseGraceSeconds: number;
  /** The dependency timeout: a refresh token's consume is bounded in the database by half of it. */
  timeoutMs?: number | undefined;
};

/** The store of one model. */
export type MakeAdapter = (model: string) => StorageAdapter;

/**
 * oidc-provider's adapter factory, and the account-level operations, each answered by the store
 * that holds its model.
 */
export type AdapterFactory = MakeAdapter &
  AccountStore & {
    /** Revokes a grant with everything tied to it: refresh and access tokens, codes. */
    revokeGrant(grantId: string): Promise<void>;
  };

/**
 * Refresh tokens are made 264 bits long (44 characters) and every other opaque token 256 (43):
 * introspection without a token_type_hint looks a value up as every kind at once, and the
 * shape lets the refresh-token lookup of an access token skip PostgreSQL entirely.
 */
export const OPAQUE_TOKEN_BITS = 256;
export const REFRESH_TOKEN_BITS = 264;
const REFRESH_TOKEN_ID_LENGTH = Math.ceil(REFRESH_TOKEN_BITS / 6);

export function createAdapterFactory(deps: AdapterDeps): AdapterFactory {
  const { db, redis, memory, timeoutMs } = deps;
  const postgresAccounts = answeringOutages(new PostgresAccounts(db));
  const shortLivedAccounts = redis
    ? answeringOutages(new RedisAccounts(redis))
    : memory && new MemoryAccounts(memory);
  const shortLived = (model: string): StorageAdapter | undefined => {
    if (!SHORT_LIVED.has(model)) return undefined;
    if (redis) return answeringOutages(new RedisAdapter(redis, model));
    return memory && new MemoryAdapter(memory, model);
  };
  const make: MakeAdapter = (model) =>
    model === 'Client'
      ? answeringOutages(new ClientAdapter(deps.findClient))
      : refusingExpired(storeOf(model));
  const storeOf = (model: string): StorageAdapter => {
    const store = shortLived(model) ?? answeringOutages(new PostgresAdapter(db, model));
    // One process owns the embedded database: it sees every change to a grant (grant-cache.ts).
    if (model === 'Grant' && memory) return withGrantCache(store);
    if (model !== 'RefreshToken') return store;
    const shaped = withIdLength(store, REFRESH_TOKEN_ID_LENGTH);
    // The consume comes last in a token request: half the dependency timeout is left for it.
    return withDeferredConsume(
      deps.refreshReuseGraceSeconds > 0
        ? withReuseGrace(shaped, deps.refreshReuseGraceSeconds)
        : shaped,
      timeoutMs && timeoutMs / 2,
    );
  };
  return withAccountOps(make, (model) =>
    shortLivedAccounts && SHORT_LIVED.has(model) ? shortLivedAccounts : postgresAccounts,
  );
}

/** `make` with the account-level operations, asked of `accountsOf` the model's store. */
export function withAccountOps(
  make: MakeAdapter,
  accountsOf: (model: 'Session' | 'Grant') => AccountStore,
): AdapterFactory {
  return Object.assign(make, {
    sessionsOf: (accountId: string) => accountsOf('Session').sessionsOf(accountId),
    endSessions: (accountId: string, options?: EndSessions) =>
      accountsOf('Session').endSessions(accountId, options),
    grantsOf: (accountId: string) => accountsOf('Grant').grantsOf(accountId),
    async revokeGrant(grantId: string) {
      await Promise.all(GRANT_MODELS.map((model) => make(model).revokeByGrantId(grantId)));
      await make('Grant').destroy(grantId);
    },
  });
}

/**
 * oidc-provider revokes the whole grant when a consumed refresh token comes back. Within the
 * grace window a consumed token is served as unconsumed, so concurrent refreshes (two tabs, a
 * retry after a lost response) each succeed; after it, reuse revokes as usual.
 */
export function withReuseGrace<A extends Adapter>(inner: A, graceSeconds: number): A {
  return Object.assign(Object.create(inner) as A, {
    async find(id: string) {
      const payload = await inner.find(id);
      if (payload?.consumed && Date.now() / 1000 - Number(payload.consumed) < graceSeconds) {
        const { consumed: _consumed, ...rest } = payload;
        return rest;
      }
      return payload;
    },
  });
}

/**
 * A payload saved with no time left (oidc-provider saves an interaction with what remains of
 * it, and accepts one a little past its expiry) is expired: its stored copy goes, and nothing
 * is written. Stored with a TTL of 0 it would never expire, and anyone who can start an
 * interaction could pile such copies up. Only a payload saved with no TTL at all lasts.
 */
function refusingExpired<A extends StorageAdapter>(inner: A): A {
  return Object.assign(Object.create(inner) as A, {
    async upsert(id: string, payload: AdapterPayload, expiresIn: number | undefined) {
      if (expiresIn === undefined || expiresIn > 0) return inner.upsert(id, payload, expiresIn!);
      await inner.destroy(id);
    },
  });
}

/** Answers "not found" without I/O for ids that cannot be of this model. */
function withIdLength<A extends Adapter>(inner: A, length: number): A {
  return Object.assign(Object.create(inner) as A, {
    find: async (id: string) => (id.length === length ? inner.find(id) : undefined),
  });
}

class ClientAdapter implements StorageAdapter {
  private readonly findClient: AdapterDeps['findClient'];
  constructor(findClient: AdapterDeps['findClient']) {
    this.findClient = findClient;
  }
  find(id: string) {
    return this.findClient(id);
  }
  // Clients are managed by the CLI and admin API, never written through the provider.
  async upsert() {}
  async findByUid() {
    return undefined;
  }
  async findByUserCode() {
    return undefined;
  }
  async consume() {}
  async consumeOnce() {
    return false;
  }
  async destroy() {}
  async revokeByGrantId() {}
  async take() {
    return undefined;
  }
}
