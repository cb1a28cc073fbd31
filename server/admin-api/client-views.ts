import { z } from 'zod';
import { clientFields } from '../clients/registration.ts';
import { inputOf, type ClientRecord } from '../clients/store.ts';

// How the admin API shows a client (never its secret but once) and takes a change of one.

export const clientSchema = z
  .object({
    clientId: z.string(),
    name: z.string(),
    public: z.boolean().meta({ description: 'No secret; must use PKCE' }),
    redirectUris: z.array(z.string()),
    postLogoutRedirectUris: z.array(z.string()),
    grantTypes: z.array(z.string()),
    corsOrigins: z.array(z.string()),
    pkceRequired: z.boolean(),
    idTokenAlg: z.string().nullable().meta({ description: 'null: SIGNING_ALG' }),
    apiScopes: z.array(z.string()),
    createdAt: z.iso.datetime(),
    updatedAt: z.iso.datetime(),
    previousSecretExpiresAt: z.iso.datetime().nullable().meta({
      description: 'Until when the secret before the last rotation still works; null: it does not',
    }),
  })
  .meta({ id: 'Client' });

export const createdSchema = clientSchema
  .extend({
    clientSecret: z.string().nullable().meta({
      description: 'Shown this once, never again; null for a public client',
    }),
  })
  .meta({ id: 'CreatedClient' });

export const rotatedSchema = z
  .object({
    clientId: z.string(),
    clientSecret: z.string().meta({ description: 'The new secret, shown this once' }),
    previousSecretExpiresAt: z.iso.datetime().nullable(),
  })
  .meta({ id: 'RotatedClientSecret' });

/** A change: only the fields sent; the client as a whole must still follow the rules. */
export const changeSchema = z
  .strictObject({
    name: clientFields.name.optional(),
    redirectUris: clientFields.redirectUris.optional(),
    postLogoutRedirectUris: clientFields.postLogoutRedirectUris.optional(),
    grantTypes: clientFields.grantTypes.optional(),
    corsOrigins: clientFields.corsOrigins.optional(),
    pkceRequired: clientFields.pkceRequired.optional(),
    idTokenAlg: clientFields.idTokenAlg.nullable().optional(),
    apiScopes: clientFields.apiScopes.optional(),
  })
  .meta({ id: 'ClientChange' });

export const viewOf = (c: ClientRecord) => {
  const input = inputOf(c.metadata);
  return {
    clientId: c.clientId,
    name: input.name,
    public: !!input.public,
    redirectUris: input.redirectUris,
    postLogoutRedirectUris: input.postLogoutRedirectUris ?? [],
    grantTypes: input.grantTypes ?? [],
    corsOrigins: input.corsOrigins ?? [],
    pkceRequired: input.pkceRequired !== false,
    idTokenAlg: input.idTokenAlg ?? null,
    apiScopes: input.apiScopes ?? [],
    createdAt: c.createdAt.toISOString(),
    updatedAt: c.updatedAt.toISOString(),
    previousSecretExpiresAt: c.previousSecretUntil?.toISOString() ?? null,
  };
};
