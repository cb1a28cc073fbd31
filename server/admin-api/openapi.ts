import { z } from 'zod';
import {
  createDocument,
  type ZodOpenApiOperationObject,
  type ZodOpenApiPathsObject,
  type ZodOpenApiResponseObject,
  type ZodOpenApiResponsesObject,
} from 'zod-openapi';
import type { ApiRoute } from './route.ts';
import { PROBLEM_TYPES } from './problems.ts';
import { ADMIN_API_PATH, ADMIN_SCOPES } from './scopes.ts';

/** RFC 9457 problem details, as every error of the admin API answers. */
export const problemSchema = z
  .object({
    type: z.string().meta({ description: 'Stable per kind of error: urn:latchkey:problem:<kind>' }),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    instance: z.string(),
    requestId: z.string().optional(),
    errors: z
      .array(
        z.object({
          in: z.enum(['path', 'query', 'body', 'header']),
          path: z.string(),
          message: z.string(),
        }),
      )
      .optional()
      .meta({ description: 'Each field of the request that is not valid' }),
  })
  .meta({ id: 'Problem' });

const problem = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: problemSchema } },
});

/** What any route may answer besides its own responses. */
const COMMON_RESPONSES: ZodOpenApiResponsesObject = {
  '400': problem('The request is not valid: `errors` says where'),
  '401': problem('No access token, or one expired, revoked or not for this API'),
  '403': problem('The token lacks the scope, or its person the admin role and a second factor'),
  '429': {
    ...problem('Too many calls by this caller'),
    headers: { 'Retry-After': { description: 'Seconds to wait', schema: { type: 'integer' } } },
  },
  '503': problem('PostgreSQL or Redis did not answer: try again shortly'),
};

function operation(route: ApiRoute): ZodOpenApiOperationObject {
  const responses: Record<string, ZodOpenApiResponseObject> = {
    ...COMMON_RESPONSES,
    ...(route.body && {
      '413': problem('The body is larger than 64 KiB'),
      '415': problem('The body is not application/json'),
    }),
  } as never;
  for (const [status, answer] of Object.entries(route.responses)) {
    const content =
      answer.content ??
      (answer.schema
        ? {
            [Number(status) >= 400 ? 'application/problem+json' : 'application/json']: {
              schema: answer.schema,
            },
          }
        : undefined);
    responses[status] = {
      description: answer.description,
      ...(content && { content }),
      ...(answer.headers && { headers: answer.headers }),
    };
  }
  return {
    operationId: route.operationId,
    summary: route.summary,
    tags: [route.tag],
    security: [{ oauth2: [route.scope] }],
    ...((route.params || route.query || route.headers) && {
      requestParams: {
        ...(route.params && { path: route.params }),
        ...(route.query && { query: route.query }),
        ...(route.headers && { header: route.headers }),
      },
    }),
    ...(route.body && {
      requestBody: { required: true, content: { 'application/json': { schema: route.body } } },
    }),
    responses,
  };
}

/**
 * The OpenAPI 3.1 document of the admin API, made from the routes' own schemas: what validates a
 * request is what the document says.
 */
export function openApiDocument(routes: ApiRoute[], issuer: string, version: string) {
  const paths: ZodOpenApiPathsObject = {};
  for (const route of routes)
    paths[route.path] = { ...paths[route.path], [route.method]: operation(route) };
  return createDocument({
    openapi: '3.1.0',
    info: {
      title: 'Latchkey admin API',
      version,
      description: [
        'Manage users, clients, sessions, the audit trail, signing keys and the directory.',
        'Authorise with an access token Latchkey issues for the resource',
        `\`${issuer}${ADMIN_API_PATH}\` (RFC 8707): a client's own (client_credentials, with the`,
        "scopes an admin allowed it), or a person's who holds the `admin` role and signed in with",
        'a second factor. Errors are RFC 9457 problem details; their `type` is one of',
        Object.keys(PROBLEM_TYPES)
          .map((t) => `urn:latchkey:problem:${t}`)
          .join(', ') + '.',
      ].join(' '),
    },
    servers: [{ url: `${issuer}${ADMIN_API_PATH}` }],
    components: {
      securitySchemes: {
        oauth2: {
          type: 'oauth2',
          flows: {
            clientCredentials: {
              tokenUrl: `${issuer}/token`,
              scopes: Object.fromEntries(ADMIN_SCOPES.map((s) => [s, SCOPE_WORDS[s]])),
            },
          },
        },
      },
    },
    paths,
  });
}

const SCOPE_WORDS: Record<(typeof ADMIN_SCOPES)[number], string> = {
  'users:read': 'List, read and export users',
  'users:write': 'Create, change, unlock and delete users',
  'clients:read': 'List and read clients',
  'clients:write': 'Create, change, rotate the secret of and delete clients',
  'sessions:read': "List users' sessions and grants",
  'sessions:write': "End users' sessions and revoke their grants",
  'audit:read': 'Query and export the audit trail',
  'keys:write': 'List and rotate signing keys',
  'directory:sync': 'See and run the directory sync',
};
