import type { Knex } from 'knex';
import type { Context } from 'koa';
import { z } from 'zod';
import { ACCOUNT_CLIENT_ID } from '../account-pages/access.ts';
import { requestFacts } from '../audit/audit.ts';
import { clientRuleProblems, newClientSchema, registerClient } from '../clients/registration.ts';
import { removeClient } from '../clients/removal.ts';
import { inputOf, type ClientInput, type ClientRecord } from '../clients/store.ts';
import {
  changeSchema,
  clientSchema,
  createdSchema,
  rotatedSchema,
  viewOf,
} from './client-views.ts';
import type { Services } from '../services.ts';
import { actorOf, type ApiCaller } from './bearer.ts';
import { changedMeanwhile, entityTag, expectedVersion, ifMatch } from './conditional.ts';
import { problemSchema } from './openapi.ts';
import { decodeCursor, encodeCursor, pageOf, pageQuery } from './pages.ts';
import { ApiProblem } from './problems.ts';
import { apiRoute, type ApiRoute } from './route.ts';
import { ADMIN_API_PATH } from './scopes.ts';

const idParams = z.object({ id: z.string().meta({ description: 'The client_id' }) });
const etagHeader = {
  ETag: { description: 'The version, for If-Match', schema: { type: 'string' } },
} as const;
const cursorSchema = z.object({ after: z.string().max(200) });

// Client ids are ours (base64url) or an operator's (`demo`): anything else is no client, and
// never reaches SQL (a NUL byte would make PostgreSQL fail the statement).
const CLIENT_ID = /^[\w.~-]{1,128}$/;

type Deps = Pick<Services, 'config' | 'db' | 'clients' | 'adapter' | 'audit' | 'log'>;

/** Clients: list, read, register, change, rotate the secret of, delete. */
export function clientRoutes(deps: Deps): ApiRoute[] {
  const { config, db, clients, audit } = deps;

  async function clientOr404(id: string, trx?: Knex): Promise<ClientRecord> {
    const found = CLIENT_ID.test(id) ? await clients.get(id, trx) : undefined;
    if (!found) throw new ApiProblem('not-found', 'No client with this id.');
    return found;
  }

  function changeable(id: string) {
    if (id === ACCOUNT_CLIENT_ID)
      throw new ApiProblem('forbidden', 'The built-in account client cannot be changed.');
  }

  /**
   * clients:write must not be a way to every other scope: a caller gives a client only admin API
   * scopes it holds itself, and changes, rotates the secret of or deletes only clients whose
   * scopes it holds (else it could take a stronger client's secret, or its redirect URIs).
   */
  function withinCallerScopes(caller: ApiCaller, scopes: readonly string[] | undefined) {
    const beyond = (scopes ?? []).filter((s) => !(caller.scopes as ReadonlySet<string>).has(s));
    if (beyond.length)
      throw new ApiProblem(
        'forbidden',
        `Only a caller holding ${beyond.join(', ')} may give or act on a client with those scopes.`,
      );
  }

  const record =
    (ctx: Context, caller: ApiCaller, type: string, subject: string, detail = {}) =>
    (trx: Knex.Transaction) =>
      audit.within(
        trx,
        { type, outcome: 'success', actor: actorOf(caller), subject, detail },
        requestFacts(ctx),
      );

  return [
    apiRoute({
      method: 'get',
      path: '/clients',
      scope: 'clients:read',
      operationId: 'listClients',
      summary: 'Registered clients, in client id order',
      tag: 'Clients',
      query: pageQuery,
      responses: {
        200: { description: 'A page of clients', schema: pageOf(clientSchema, 'ClientPage') },
      },
      async handle({ query }) {
        const after = decodeCursor(query.cursor, cursorSchema)?.after;
        const rows = await clients.page(after, query.limit + 1);
        const items = rows.slice(0, query.limit);
        const last = items.at(-1);
        const next =
          rows.length > query.limit && last ? encodeCursor({ after: last.clientId }) : null;
        return { status: 200, body: { items: items.map(viewOf), next } };
      },
    }),
    apiRoute({
      method: 'get',
      path: '/clients/{id}',
      scope: 'clients:read',
      operationId: 'getClient',
      summary: 'One client (never its secret)',
      tag: 'Clients',
      params: idParams,
      responses: {
        200: { description: 'The client', schema: clientSchema, headers: etagHeader },
        404: { description: 'No such client', schema: problemSchema },
      },
      async handle({ params }) {
        const client = await clientOr404(params.id);
        return { status: 200, body: viewOf(client), headers: { ETag: entityTag(client.version) } };
      },
    }),
    apiRoute({
      method: 'post',
      path: '/clients',
      scope: 'clients:write',
      operationId: 'createClient',
      summary: 'Register a client; its secret is in this answer only',
      tag: 'Clients',
      body: newClientSchema,
      responses: {
        201: {
          description: 'Registered',
          schema: createdSchema,
          headers: {
            ...etagHeader,
            Location: { description: 'The client', schema: { type: 'string' } },
          },
        },
      },
      async handle({ body, caller, ctx }) {
        withinCallerScopes(caller, body.apiScopes);
        const { client, clientSecret } = await db.transaction(async (trx) => {
          const made = await registerClient(clients, body, trx);
          await record(ctx, caller, 'client_created', made.clientId, { name: body.name })(trx);
          return {
            client: (await clients.get(made.clientId, trx))!,
            clientSecret: made.clientSecret,
          };
        });
        return {
          status: 201,
          body: { ...viewOf(client), clientSecret: clientSecret ?? null },
          headers: {
            ETag: entityTag(client.version),
            Location: `${ADMIN_API_PATH}/clients/${encodeURIComponent(client.clientId)}`,
          },
        };
      },
    }),
    apiRoute({
      method: 'patch',
      path: '/clients/{id}',
      scope: 'clients:write',
      operationId: 'updateClient',
      summary: 'Change a client: send If-Match with the ETag you read',
      tag: 'Clients',
      params: idParams,
      headers: ifMatch,
      body: changeSchema,
      responses: {
        200: { description: 'Changed', schema: clientSchema, headers: etagHeader },
        404: { description: 'No such client', schema: problemSchema },
        412: { description: 'It changed since you read it', schema: problemSchema },
        428: { description: 'No If-Match', schema: problemSchema },
      },
      async handle({ params, body, caller, ctx }) {
        changeable(params.id);
        const current = await clientOr404(params.id);
        withinCallerScopes(caller, inputOf(current.metadata).apiScopes);
        withinCallerScopes(caller, body.apiScopes);
        const version = expectedVersion(ctx);
        const { idTokenAlg, ...rest } = body;
        const changed: ClientInput = {
          ...inputOf(current.metadata),
          ...rest,
          ...(idTokenAlg !== undefined && { idTokenAlg: idTokenAlg ?? undefined }),
        };
        const problems = clientRuleProblems(changed);
        if (problems.length)
          throw new ApiProblem('invalid-request', "The request's body is not valid.", {
            errors: problems.map(({ field, message }) => ({ in: 'body', path: field, message })),
          });
        const fields = Object.keys(body);
        const client = await db.transaction(async (trx) => {
          if (!(await clients.update(params.id, version, changed, trx))) return undefined;
          await record(ctx, caller, 'client_updated', params.id, { fields })(trx);
          return clients.get(params.id, trx);
        });
        if (!client) throw changedMeanwhile();
        await clients.forget(params.id);
        return { status: 200, body: viewOf(client), headers: { ETag: entityTag(client.version) } };
      },
    }),
    apiRoute({
      method: 'post',
      path: '/clients/{id}/rotate-secret',
      scope: 'clients:write',
      operationId: 'rotateClientSecret',
      summary: 'A new secret, in this answer only; the old one works CLIENT_SECRET_OVERLAP more',
      tag: 'Clients',
      params: idParams,
      body: z
        .strictObject({
          overlapSeconds: z
            .number()
            .int()
            .min(0)
            .max(config.clientSecretOverlapSeconds)
            .optional()
            .meta({
              description:
                'How long the old secret keeps working: default (and at most) CLIENT_SECRET_OVERLAP; 0 for a leaked secret',
            }),
        })
        .meta({ id: 'SecretRotation' }),
      responses: {
        200: { description: 'Rotated', schema: rotatedSchema, headers: etagHeader },
        404: { description: 'No such client', schema: problemSchema },
        409: { description: 'A public client has no secret', schema: problemSchema },
      },
      async handle({ params, body, caller, ctx }) {
        changeable(params.id);
        withinCallerScopes(caller, inputOf((await clientOr404(params.id)).metadata).apiScopes);
        const overlap = body.overlapSeconds ?? config.clientSecretOverlapSeconds;
        const done = await db.transaction(async (trx) => {
          const rotated = await clients.rotateSecret(params.id, overlap, trx);
          if (!rotated) return undefined;
          await record(ctx, caller, 'client_secret_rotated', params.id, { overlap })(trx);
          return { ...rotated, client: (await clients.get(params.id, trx))! };
        });
        if (!done) throw new ApiProblem('conflict', 'A public client has no secret to rotate.');
        await clients.forget(params.id);
        return {
          status: 200,
          body: {
            clientId: params.id,
            clientSecret: done.clientSecret,
            previousSecretExpiresAt: done.previousUntil?.toISOString() ?? null,
          },
          headers: { ETag: entityTag(done.client.version) },
        };
      },
    }),
    apiRoute({
      method: 'delete',
      path: '/clients/{id}',
      scope: 'clients:write',
      operationId: 'deleteClient',
      summary: "Delete a client: its users' grants and tokens stop working",
      tag: 'Clients',
      params: idParams,
      responses: {
        204: { description: 'Deleted' },
        404: { description: 'No such client', schema: problemSchema },
      },
      async handle({ params, caller, ctx }) {
        changeable(params.id);
        withinCallerScopes(caller, inputOf((await clientOr404(params.id)).metadata).apiScopes);
        const found =
          CLIENT_ID.test(params.id) &&
          (await removeClient(deps, params.id, (trx, grants) =>
            record(ctx, caller, 'client_deleted', params.id, { grants })(trx),
          ));
        if (!found) throw new ApiProblem('not-found', 'No client with this id.');
        return { status: 204 };
      },
    }),
  ];
}
