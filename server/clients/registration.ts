import type { Knex } from 'knex';
import { z } from 'zod';
import { ADMIN_SCOPES } from '../admin-api/scopes.ts';
import { SIGNING_ALGS } from '../keys/store.ts';
import type { ClientInput, ClientStore } from './store.ts';

// What a client may be, in one place: the CLI (`clients create`) and the admin API check a new
// or changed client with these schemas and rules, and the API documents them from the same.

export const GRANT_TYPES = ['authorization_code', 'refresh_token', 'client_credentials'] as const;

/** RFC 6749 §3.1.2: an absolute URI without a fragment. */
const redirectUri = z
  .string()
  .max(2000)
  .refine((text) => {
    const url = URL.parse(text);
    return !!url && !url.hash && !text.includes('#') && url.protocol !== 'javascript:';
  }, 'an absolute URL without a fragment');

const origin = z
  .string()
  .max(300)
  .refine((text) => URL.parse(text)?.origin === text, 'an origin like https://app.example.com');

const list = <T extends z.ZodType>(item: T) => z.array(item).max(50);

/** The fields a client is described by; each optional in a change. */
export const clientFields = {
  name: z.string().trim().min(1).max(200),
  redirectUris: list(redirectUri),
  postLogoutRedirectUris: list(redirectUri),
  grantTypes: z.array(z.enum(GRANT_TYPES)).min(1).max(GRANT_TYPES.length),
  corsOrigins: list(origin).meta({
    description: 'Origins allowed to call the token endpoint from a browser (CORS)',
  }),
  idTokenAlg: z.enum(SIGNING_ALGS).meta({
    description: "The ID token's signing algorithm for this client; absent: SIGNING_ALG",
  }),
  pkceRequired: z.boolean().meta({
    description: 'false lets an old confidential client omit PKCE; never a public client',
  }),
  apiScopes: z.array(z.enum(ADMIN_SCOPES)).max(ADMIN_SCOPES.length).meta({
    description: 'Admin API scopes this client may be issued',
  }),
};

type Problem = { field: keyof ClientInput; message: string };

/** What a whole client must be, beyond each field's own shape. */
export function clientRuleProblems(input: ClientInput): Problem[] {
  const grants = input.grantTypes ?? ['authorization_code', 'refresh_token'];
  const problems: Problem[] = [];
  if (!input.redirectUris.length && !(grants.length === 1 && grants[0] === 'client_credentials'))
    problems.push({
      field: 'redirectUris',
      message: 'at least one, unless the only grant type is client_credentials',
    });
  if (input.public && input.pkceRequired === false)
    problems.push({ field: 'pkceRequired', message: 'a public client must use PKCE' });
  if (input.public && grants.includes('client_credentials'))
    problems.push({
      field: 'grantTypes',
      message: 'a public client has no secret for client_credentials',
    });
  return problems;
}

const withRules = (input: ClientInput, ctx: z.RefinementCtx) => {
  for (const { field, message } of clientRuleProblems(input))
    ctx.addIssue({ code: 'custom', path: [field], message });
};

/** A new client, as the admin API takes it and the CLI builds it from its options. */
export const newClientSchema = z
  .strictObject({
    name: clientFields.name,
    redirectUris: clientFields.redirectUris.default([]),
    postLogoutRedirectUris: clientFields.postLogoutRedirectUris.optional(),
    grantTypes: clientFields.grantTypes.optional().meta({
      description: 'Default: authorization_code and refresh_token',
    }),
    public: z.boolean().optional().meta({
      description: 'A public client (SPA, native app) has no secret and must use PKCE',
    }),
    pkceRequired: clientFields.pkceRequired.optional(),
    corsOrigins: clientFields.corsOrigins.optional().meta({
      description: "Default: none; for a public client, its redirect URIs' origins",
    }),
    idTokenAlg: clientFields.idTokenAlg.optional(),
    apiScopes: clientFields.apiScopes.optional(),
  })
  .superRefine(withRules)
  .meta({ id: 'NewClient' });

export type NewClient = z.input<typeof newClientSchema>;

/** A client's input not acceptable: which field, and why. */
export class ClientRuleError extends Error {
  readonly field: string;
  constructor(field: string, message: string) {
    super(message);
    this.field = field;
  }
}

/** `input` checked by the schema and the rules; throws ClientRuleError for the first problem. */
export function checkedNewClient(input: NewClient): ClientInput {
  const parsed = newClientSchema.safeParse(input);
  if (!parsed.success) {
    const [issue] = parsed.error.issues;
    throw new ClientRuleError(String(issue?.path[0] ?? ''), issue?.message ?? 'not valid');
  }
  const client = parsed.data;
  // A browser app calls the token endpoint from where it is redirected back to.
  const corsOrigins =
    client.corsOrigins ??
    (client.public ? [...new Set(client.redirectUris.map((u) => new URL(u).origin))] : []);
  return { ...client, corsOrigins };
}

/** Registers a client checked as above; its secret is returned once. */
export async function registerClient(
  clients: Pick<ClientStore, 'create'>,
  input: NewClient,
  trx?: Knex,
) {
  return clients.create(checkedNewClient(input), trx);
}
