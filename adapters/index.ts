import type { Knex } from 'knex';
import type { Redis } from 'ioredis';
import { PostgresAdapter } from './postgres.ts';
import { RedisAdapter } from './redis.ts';
import type { Adapter, AdapterPayload } from './types.ts';

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
]);

export type AdapterDeps = {
  db: Knex;
  redis?: Redis | undefined;
  /** Reads a registered client's metadata (secret unsealed); the Client model is read-only here. */
  findClient: (clientId: string) => Promise<AdapterPayload | undefined>;
  refreshReuseGraceSeconds: number;
};

export type AdapterFactory = (model: string) => Adapter;

export function createAdapterFactory(deps: AdapterDeps): AdapterFactory {
  return (model) => {
    if (model === 'Client') return new ClientAdapter(deps.findClient);
    const store =
      deps.redis && REDIS_MODELS.has(model)
        ? new RedisAdapter(deps.redis, model)
        : new PostgresAdapter(deps.db, model);
    if (model === 'RefreshToken' && deps.refreshReuseGraceSeconds > 0)
      return withReuseGrace(store, deps.refreshReuseGraceSeconds);
    return store;
  };
}

/**
 * oidc-provider revokes the whole grant when a consumed refresh token comes back. Within the
 * grace window a consumed token is served as unconsumed, so concurrent refreshes (two tabs, a
 * retry after a lost response) each succeed; after it, reuse revokes as usual.
 */
export function withReuseGrace(inner: Adapter, graceSeconds: number): Adapter {
  return Object.assign(Object.create(inner) as Adapter, {
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

class ClientAdapter implements Adapter {
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
}
