import type { Context } from 'koa';
import type { CallActor } from './bearer.ts';

/**
 * The admin API's errors as RFC 9457 problem details. `type` is stable per kind of error
 * (clients may switch on it); `detail` says what was wrong with the request in words fit for
 * the caller, never internals.
 */
export const PROBLEM_TYPES = {
  'invalid-request': 400,
  'invalid-token': 401,
  'insufficient-scope': 403,
  forbidden: 403,
  'not-found': 404,
  'method-not-allowed': 405,
  conflict: 409,
  'precondition-failed': 412,
  'payload-too-large': 413,
  'unsupported-media-type': 415,
  'precondition-required': 428,
  'too-many-requests': 429,
  'server-error': 500,
  'temporarily-unavailable': 503,
} as const;

export type ProblemType = keyof typeof PROBLEM_TYPES;

export const problemTypeUri = (type: ProblemType) => `urn:latchkey:problem:${type}`;

/** One field's problem in a request: where (`in`, `path`) and what. */
export type FieldProblem = {
  in: 'path' | 'query' | 'body' | 'header';
  path: string;
  message: string;
};

/** A problem a handler throws; the router writes it as application/problem+json. */
export class ApiProblem extends Error {
  readonly type: ProblemType;
  readonly status: number;
  readonly errors: FieldProblem[] | undefined;
  readonly headers: Record<string, string>;
  /** Who was refused, when it is known before the call is (a person without the admin role). */
  readonly actor: CallActor | undefined;
  constructor(
    type: ProblemType,
    detail: string,
    {
      errors,
      headers = {},
      actor,
    }: { errors?: FieldProblem[]; headers?: Record<string, string>; actor?: CallActor } = {},
  ) {
    super(detail);
    this.type = type;
    this.status = PROBLEM_TYPES[type];
    this.errors = errors;
    this.headers = headers;
    this.actor = actor;
  }
}

const TITLES: Record<ProblemType, string> = {
  'invalid-request': 'The request is not valid',
  'invalid-token': 'The access token is missing, expired, revoked or not for this API',
  'insufficient-scope': 'The access token lacks the scope this route needs',
  forbidden: 'The caller may not do this',
  'not-found': 'No such resource',
  'method-not-allowed': 'The resource does not allow this method',
  conflict: 'The request conflicts with the current state',
  'precondition-failed': 'The resource changed since it was read',
  'payload-too-large': 'The request body is too large',
  'unsupported-media-type': 'The request body must be application/json',
  'precondition-required': 'The request must say which version it changes (If-Match)',
  'too-many-requests': 'Too many requests',
  'server-error': 'An unexpected error occurred',
  'temporarily-unavailable': 'The service is temporarily unavailable',
};

/** Writes `problem` as the response. */
export function sendProblem(ctx: Context, problem: ApiProblem): void {
  for (const [name, value] of Object.entries(problem.headers)) ctx.set(name, value);
  ctx.status = problem.status;
  ctx.type = 'application/problem+json';
  ctx.body = {
    type: problemTypeUri(problem.type),
    title: TITLES[problem.type],
    status: problem.status,
    detail: problem.message,
    instance: ctx.path,
    requestId: ctx.state.requestId as string | undefined,
    ...(problem.errors && { errors: problem.errors }),
  };
}
