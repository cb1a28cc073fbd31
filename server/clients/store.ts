import { randomBytes } from 'node:crypto';
import type { Knex } from 'knex';
import type { AdapterPayload } from 'oidc-provider';
import { affected, type Db } from '../db.ts';
import type { ClientChangeNews } from './change-news.ts';
import type { AdminScope } from '../admin-api/scopes.ts';
import { rowVersion } from '../admin-api/conditional.ts';
import { seal, unseal } from '../security/seal.ts';

const sealedAt = (clientId: string, column: 'secret_sealed' | 'previous_secret_sealed') =>
  ({ table: 'clients', column, row: clientId }) as const;

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

/** The metadata oidc-provider reads (RFC 7591 names) of a client described by `input`. */
export function metadataOf(input: ClientInput): Record<string, unknown> {
  const grantTypes = input.grantTypes ?? ['authorization_code', 'refresh_token'];
  return {
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
}

/** The input that describes a stored client: what a change starts from. */
export function inputOf(metadata: Record<string, unknown>): ClientInput {
  const list = (key: string) => (metadata[key] as string[] | undefined) ?? [];
  return {
    name: String(metadata.client_name ?? ''),
    redirectUris: list('redirect_uris'),
    postLogoutRedirectUris: list('post_logout_redirect_uris'),
    grantTypes: list('grant_types'),
    public: metadata.token_endpoint_auth_method === 'none',
    pkceRequired: metadata.pkce_required !== false,
    corsOrigins: list('allowed_cors_origins'),
    idTokenAlg: metadata.id_token_signed_response_alg as string | undefined,
    apiScopes: list('api_scopes') as AdminScope[],
  };
}

/** A stored client as the admin API shows it: never its secrets. */
export type ClientRecord = {
  clientId: string;
  metadata: Record<string, unknown>;
  createdAt: Date;
  updatedAt: Date;
  /** Until when the secret before the last rotation still authenticates; null: it does not. */
  previousSecretUntil: Date | null;
  /** The row's version, for ETag / If-Match (admin-api/conditional.ts). */
  version: string;
};

type Row = {
  client_id: string;
  secret_sealed: string | null;
  previous_secret_sealed: string | null;
  previous_secret_until: Date | null;
  metadata: Record<string, unknown> | string;
  created_at: Date;
  updated_at: Date;
  version: string;
};

// PGlite hands json columns back as text.
const parsed = (m: Row['metadata']) => (typeof m === 'string' ? JSON.parse(m) : m);

const recordOf = (r: Row): ClientRecord => ({
  clientId: r.client_id,
  metadata: parsed(r.metadata),
  createdAt: new Date(r.created_at),
  updatedAt: new Date(r.updated_at),
  previousSecretUntil:
    r.previous_secret_until && new Date(r.previous_secret_until).getTime() > Date.now()
      ? new Date(r.previous_secret_until)
      : null,
  version: r.version,
});

const newSecret = () => randomBytes(32).toString('base64url');

/** What a client may authenticate with now; the previous secret only until its time is up. */
export type ClientSecrets = { current?: string | undefined; previous?: string | undefined };

type Cached = {
  until: number;
  value: AdapterPayload | undefined;
  previous: { secret: string; until: number } | undefined;
};

const MAX_CACHED = 10_000;

export function createClientStore(
  db: Db,
  sealingKey: Buffer,
  cacheSeconds: number,
  news?: ClientChangeNews,
) {
  const cache = new Map<string, Cached>();
  const RECORD_COLUMNS = [
    'client_id',
    'metadata',
    'created_at',
    'updated_at',
    'previous_secret_until',
    db.raw(`${rowVersion('clients')} as version`),
  ];

  async function load(clientId: string, fresh = false): Promise<Cached> {
    const hit = cache.get(clientId);
    if (!fresh && hit && hit.until > Date.now()) return hit;
    const row: Row | undefined = await db('clients').where({ client_id: clientId }).first();
    const open = (sealed: string, column: Parameters<typeof sealedAt>[1]) =>
      unseal(sealingKey, sealed, sealedAt(clientId, column));
    const entry: Cached = {
      until: Date.now() + cacheSeconds * 1000,
      value: row && {
        ...parsed(row.metadata),
        client_id: row.client_id,
        ...(row.secret_sealed && { client_secret: open(row.secret_sealed, 'secret_sealed') }),
      },
      previous:
        row?.previous_secret_sealed && row.previous_secret_until
          ? {
              secret: open(row.previous_secret_sealed, 'previous_secret_sealed'),
              until: new Date(row.previous_secret_until).getTime(),
            }
          : undefined,
    };
    if (cacheSeconds > 0) {
      if (cache.size >= MAX_CACHED) cache.clear();
      cache.set(clientId, entry);
    }
    return entry;
  }

  return {
    /** Registers a client; the secret is returned here once and kept only sealed. */
    async create(
      input: ClientInput,
      trx: Knex = db,
    ): Promise<{ clientId: string; clientSecret: string | undefined }> {
      if (input.public && input.pkceRequired === false)
        throw new Error('a public client must use PKCE');
      const clientId = input.clientId ?? randomBytes(12).toString('base64url');
      const clientSecret = input.public ? undefined : newSecret();
      await trx('clients').insert({
        client_id: clientId,
        secret_sealed: clientSecret
          ? seal(sealingKey, clientSecret, sealedAt(clientId, 'secret_sealed'))
          : null,
        metadata: JSON.stringify(metadataOf(input)),
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
        metadata: parsed(r.metadata),
      }));
    },

    async get(clientId: string, trx: Knex = db): Promise<ClientRecord | undefined> {
      const row: Row | undefined = await trx('clients')
        .select(RECORD_COLUMNS)
        .where({ client_id: clientId })
        .first();
      return row && recordOf(row);
    },

    /** Up to `limit` clients after the client id `after`, in client id order. */
    async page(after: string | undefined, limit: number): Promise<ClientRecord[]> {
      const query = db('clients').select(RECORD_COLUMNS).orderBy('client_id').limit(limit);
      if (after !== undefined) query.where('client_id', '>', after);
      return ((await query) as Row[]).map(recordOf);
    },

    /**
     * Writes the metadata if the row is still at `version`: the check and the write are one
     * statement. False when it is not (changed meanwhile, or gone).
     */
    async update(
      clientId: string,
      version: string,
      input: ClientInput,
      trx: Knex = db,
    ): Promise<boolean> {
      const changed = await trx('clients')
        .where({ client_id: clientId })
        .whereRaw(`${rowVersion('clients')} = ?`, [version])
        .update({ metadata: JSON.stringify(metadataOf(input)), updated_at: trx.fn.now() });
      return affected(changed) > 0;
    },

    /**
     * A new secret for a confidential client; the one it replaces keeps working `overlapSeconds`
     * (none with 0). Undefined for no such client or a public one. Row-locked: two rotations
     * at once happen one after the other, each keeping the secret it replaced.
     */
    async rotateSecret(
      clientId: string,
      overlapSeconds: number,
      trx: Knex,
    ): Promise<{ clientSecret: string; previousUntil: Date | null } | undefined> {
      const row: Pick<Row, 'secret_sealed'> | undefined = await trx('clients')
        .select('secret_sealed')
        .where({ client_id: clientId })
        .forUpdate()
        .first();
      if (!row?.secret_sealed) return undefined;
      const clientSecret = newSecret();
      const old = unseal(sealingKey, row.secret_sealed, sealedAt(clientId, 'secret_sealed'));
      const previousUntil =
        overlapSeconds > 0 ? new Date(Date.now() + overlapSeconds * 1000) : null;
      await trx('clients')
        .where({ client_id: clientId })
        .update({
          secret_sealed: seal(sealingKey, clientSecret, sealedAt(clientId, 'secret_sealed')),
          previous_secret_sealed: previousUntil
            ? seal(sealingKey, old, sealedAt(clientId, 'previous_secret_sealed'))
            : null,
          previous_secret_until: previousUntil,
          updated_at: trx.fn.now(),
        });
      return { clientSecret, previousUntil };
    },

    async delete(clientId: string, trx: Knex = db): Promise<boolean> {
      cache.delete(clientId);
      return affected(await trx('clients').where({ client_id: clientId }).delete()) > 0;
    },

    /**
     * Drops the cached copies of a client, this process's and (through Redis) every other's:
     * after a change commits, it is read again everywhere.
     */
    async forget(clientId: string): Promise<void> {
      cache.delete(clientId);
      await news?.tell(clientId);
    },

    /** Drops the cached copy whenever another process says the client changed. */
    listenForChanges(): void {
      news?.listen(
        (clientId) => cache.delete(clientId),
        () => cache.clear(),
      );
    },

    close(): void {
      news?.close();
    },

    /**
     * The provider's view of a client, secret unsealed. The token and introspection endpoints
     * look a client up on every call, so reads are cached for a few seconds.
     */
    async findForProvider(clientId: string): Promise<AdapterPayload | undefined> {
      return (await load(clientId)).value;
    },

    /**
     * The secrets the client may authenticate with now. `fresh` reads past the cache: a secret
     * rotated by another process works here at once, not only after CLIENT_CACHE_SECONDS.
     */
    async secretsOf(clientId: string, { fresh = false } = {}): Promise<ClientSecrets> {
      const { value, previous } = await load(clientId, fresh);
      return {
        current: value?.client_secret as string | undefined,
        previous: previous && previous.until > Date.now() ? previous.secret : undefined,
      };
    },

    count: async () => Number((await db('clients').count({ n: '*' }).first())?.n ?? 0),
  };
}

export type ClientStore = ReturnType<typeof createClientStore>;
