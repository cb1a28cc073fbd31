import type { Context } from 'koa';
import type { z } from 'zod';
import type { ZodOpenApiResponseObject } from 'zod-openapi';
import { readBodyText } from '../http/body.ts';
import type { ApiCaller } from './bearer.ts';
import { ApiProblem, type FieldProblem } from './problems.ts';
import type { AdminScope } from './scopes.ts';

const BODY_LIMIT_BYTES = 64 * 1024;

type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';
type Schema = z.ZodType;
type Out<S> = S extends z.ZodType ? z.output<S> : undefined;

/** What a handler answers: a status, a JSON body (or a stream), and headers. */
export type ApiAnswer = {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
};

/** What a handler is given: the request's parts, each already checked against its schema. */
export type ApiRequest<P, Q, B> = {
  params: P;
  query: Q;
  body: B;
  caller: ApiCaller;
  ctx: Context;
};

/** A documented response: its description, and its JSON schema or other content. */
export type ApiResponse = {
  description: string;
  schema?: Schema;
  /** Content other than JSON (a download). */
  content?: ZodOpenApiResponseObject['content'];
  headers?: ZodOpenApiResponseObject['headers'];
};

/**
 * One route of the admin API: everything the router needs to check a request and everything the
 * OpenAPI document says about it, from the same schemas.
 */
export type ApiRoute = {
  method: Method;
  /** OpenAPI style, relative to ADMIN_API_PATH: `/users/{id}`. */
  path: string;
  scope: AdminScope;
  operationId: string;
  summary: string;
  tag: string;
  params?: z.ZodObject | undefined;
  query?: z.ZodObject | undefined;
  body?: Schema | undefined;
  /** Request headers it reads (If-Match), documented as parameters. */
  headers?: z.ZodObject | undefined;
  responses: Record<number, ApiResponse>;
  handle(request: ApiRequest<unknown, unknown, unknown>): Promise<ApiAnswer>;
};

/** Declares a route with its handler typed by its schemas. */
export function apiRoute<
  P extends z.ZodObject | undefined = undefined,
  Q extends z.ZodObject | undefined = undefined,
  B extends Schema | undefined = undefined,
>(
  route: Omit<ApiRoute, 'handle' | 'params' | 'query' | 'body'> & {
    params?: P;
    query?: Q;
    body?: B;
    handle(request: ApiRequest<Out<P>, Out<Q>, Out<B>>): Promise<ApiAnswer>;
  },
): ApiRoute {
  return route as ApiRoute;
}

const issues = (where: FieldProblem['in'], error: z.ZodError): FieldProblem[] =>
  error.issues.map((issue) => ({
    in: where,
    path: issue.path.map(String).join('.'),
    message: issue.message,
  }));

/** Whether a string anywhere in `value` holds a NUL, which PostgreSQL text cannot store. */
export function holdsNul(value: unknown): boolean {
  if (typeof value === 'string') return value.includes('\u0000');
  if (Array.isArray(value)) return value.some(holdsNul);
  if (value && typeof value === 'object')
    return Object.entries(value).some(([key, v]) => key.includes('\u0000') || holdsNul(v));
  return false;
}

function check<S extends Schema>(schema: S, value: unknown, where: FieldProblem['in']) {
  // Refused here, once for every route and field, before any of it can reach SQL.
  if (holdsNul(value))
    throw new ApiProblem('invalid-request', `The request's ${where} holds a NUL character.`);
  const parsed = schema.safeParse(value);
  if (!parsed.success)
    throw new ApiProblem('invalid-request', `The request's ${where} is not valid.`, {
      errors: issues(where, parsed.error),
    });
  return parsed.data as z.output<S>;
}

async function readJson(ctx: Context): Promise<unknown> {
  if (!ctx.is('application/json'))
    throw new ApiProblem('unsupported-media-type', 'Send the body as application/json.');
  const text = await readBodyText(ctx, BODY_LIMIT_BYTES);
  if (text === undefined)
    throw new ApiProblem('payload-too-large', `The body may be at most ${BODY_LIMIT_BYTES} bytes.`);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new ApiProblem('invalid-request', 'The body is not valid JSON.');
  }
}

/** Checks the request against the route's schemas, then runs its handler. */
export async function runRoute(route: ApiRoute, ctx: Context, caller: ApiCaller) {
  const params = route.params ? check(route.params, ctx.params, 'path') : undefined;
  const query = route.query ? check(route.query, ctx.query, 'query') : undefined;
  if (route.headers) check(route.headers, ctx.headers, 'header');
  const body = route.body ? check(route.body, await readJson(ctx), 'body') : undefined;
  return route.handle({ params, query, body, caller, ctx });
}
