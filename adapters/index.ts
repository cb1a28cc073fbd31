import type { Knex } from 'knex';
import { answeringOutages } from './outages.ts';
import { PostgresAdapter } from './postgres.ts';
import { RedisAdapter, type RedisClient } from './redis.ts';
import { withDeferredConsume } from './refresh-rotation.ts';
import type { Adapter, AdapterPayload, StorageAdapter } from './types.ts';

/** Short-lived, TTL-driven models: in Redis when it is configured (ARCHITECTURE.md, state table). */
export const REDIS_MODELS = new Set([
  'Session',
  'Interaction',
  'AuthorizationCode',
  'AccessToken',
  'ClientCredentials',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
  'PushedAuthorizationRequest',
  'ReplayDetection',
  'WebAuthnChallenge',
]);

export type AdapterDeps = {
  db: Knex;
  redis?: RedisClient | undefined;
  /** Reads a registered client's metadata (secret unsealed); the Client model is read-only here. */
  findClient: (clientId: string) => Promise<AdapterPayload | undefined>;
  refreshReuseGraceSeconds: number;
  /** Each storage call answers within this, or fails as temporarily_unavailable; none if unset. */
  timeoutMs?: number | undefined;
};

export type AdapterFactory = (model: string) => StorageAdapter;

/**
 * Refresh tokens are made 264 bits long (44 characters) and every other opaque token 256 (43):
 * introspection without a token_type_hint looks a value up as every kind at once, and the
 * shape lets the refresh-token lookup of an access token skip PostgreSQL entirely.
 */
export const OPAQUE_TOKEN_BITS = 256;
export const REFRESH_TOKEN_BITS = 264;
const REFRESH_TOKEN_ID_LENGTH = Math.ceil(REFRESH_TOKEN_BITS / 6);

export function createAdapterFactory(deps: AdapterDeps): AdapterFactory {
  return (model) => {
    if (model === 'Client')
      return answeringOutages(new ClientAdapter(deps.findClient), model, deps.timeoutMs);
    const store = answeringOutages(
      deps.redis && REDIS_MODELS.has(model)
        ? new RedisAdapter(deps.redis, model)
        : new PostgresAdapter(deps.db, model),
      model,
      deps.timeoutMs,
    );
    if (model !== 'RefreshToken') return store;
    const shaped = withIdLength(store, REFRESH_TOKEN_ID_LENGTH);
    return withDeferredConsume(
      deps.refreshReuseGraceSeconds > 0
        ? withReuseGrace(shaped, deps.refreshReuseGraceSeconds)
        : shaped,
    );
  };
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
  async destroy() {}
  async revokeByGrantId() {}
  async take() {
    return undefined;
  }
}
