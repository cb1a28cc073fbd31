import { randomBytes } from 'node:crypto';
import type { AdapterPayload } from 'oidc-provider';
import { affected, type Db } from '../db.ts';
import type { AdminScope } from '../admin-api/scopes.ts';
import { seal, unseal } from '../security/seal.ts';

const secretField = (clientId: string) =>
  ({ table: 'clients', column: 'secret_sealed', row: clientId }) as const;

export type ClientInput = {
  name: string;
  redirectUris: string[];
  postLogoutRedirectUris?: string[] | undefined;
  grantTypes?: string[] | undefined;
  /** A public client (SPA, native app) has no secret and must use PKCE. */
  public?: boolean | undefined;
  /** false: an old confidential client may omit PKCE (RFC 9700 §2.1.1); never a public one. */
  pkceRequired?: boolean | undefined;
  corsOrigins?: string[] | undefined;
  /** ID token signing algorithm for this client (ES256, EdDSA or RS256); unset: SIGNING_ALG. */
  idTokenAlg?: string | undefined;
  clientId?: string | undefined;
  /** Admin API scopes an admin allowed this client (server/admin-api/scopes.ts). */
  apiScopes?: AdminScope[] | undefined;
};

type Row = {
  client_id: string;
  secret_sealed: string | null;
  metadata: Record<string, unknown>;
  created_at: Date;
};

const MAX_CACHED = 10_000;

export function createClientStore(db: Db, sealingKey: Buffer, cacheSeconds: number) {
  const cache = new Map<string, { until: number; value: AdapterPayload | undefined }>();

  return {
    /** Registers a client; the secret is returned here once and kept only sealed. */
    async create(
      input: ClientInput,
    ): Promise<{ clientId: string; clientSecret: string | undefined }> {
      if (input.public && input.pkceRequired === false)
        throw new Error('a public client must use PKCE');
      const clientId = input.clientId ?? randomBytes(12).toString('base64url');
      const clientSecret = input.public ? undefined : randomBytes(32).toString('base64url');
      const grantTypes = input.grantTypes ?? ['authorization_code', 'refresh_token'];
      const metadata = {
        client_name: input.name,
        redirect_uris: input.redirectUris,
        post_logout_redirect_uris: input.postLogoutRedirectUris ?? [],
        grant_types: grantTypes,
        response_types: grantTypes.includes('authorization_code') ? ['code'] : [],
        token_endpoint_auth_method: input.public ? 'none' : 'client_secret_basic',
        allowed_cors_origins: input.corsOrigins ?? [],
        ...(input.idTokenAlg && { id_token_signed_response_alg: input.idTokenAlg }),
        ...(input.pkceRequired === false && { pkce_required: false }),
        ...(input.apiScopes?.length && { api_scopes: input.apiScopes }),
      };
      await db('clients').insert({
        client_id: clientId,
        secret_sealed: clientSecret ? seal(sealingKey, clientSecret, secretField(clientId)) : null,
        metadata: JSON.stringify(metadata),
      });
      return { clientId, clientSecret };
    },

    async list() {
      const rows: Row[] = await db('clients')
        .select('client_id', 'metadata', 'created_at')
        .orderBy('created_at');
      return rows.map((r) => ({
        clientId: r.client_id,
        createdAt: r.created_at,
        metadata: r.metadata,
      }));
    },

    async delete(clientId: string): Promise<boolean> {
      cache.delete(clientId);
      return affected(await db('clients').where({ client_id: clientId }).delete()) > 0;
    },

    /**
     * The provider's view of a client, secret unsealed. The token and introspection endpoints
     * look a client up on every call, so reads are cached for a few seconds.
     */
    async findForProvider(clientId: string): Promise<AdapterPayload | undefined> {
      const hit = cache.get(clientId);
      if (hit && hit.until > Date.now()) return hit.value;
      const row: Row | undefined = await db('clients').where({ client_id: clientId }).first();
      const value = row
        ? {
            ...row.metadata,
            client_id: row.client_id,
            ...(row.secret_sealed && {
              client_secret: unseal(sealingKey, row.secret_sealed, secretField(row.client_id)),
            }),
          }
        : undefined;
      if (cacheSeconds > 0) {
        if (cache.size >= MAX_CACHED) cache.clear();
        cache.set(clientId, { until: Date.now() + cacheSeconds * 1000, value });
      }
      return value;
    },

    count: async () => Number((await db('clients').count({ n: '*' }).first())?.n ?? 0),
  };
}

export type ClientStore = ReturnType<typeof createClientStore>;
