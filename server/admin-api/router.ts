import Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import { isUnavailable, RETRY_AFTER_SECONDS } from '../../adapters/outages.ts';
import { requestFacts } from '../audit/audit.ts';
import { senderKey } from '../protection/rate-limits.ts';
import type { Services } from '../services.ts';
import { callActorOf, type ApiCaller, type BearerVerifier, type CallActor } from './bearer.ts';
import { openApiDocument } from './openapi.ts';
import { ApiProblem, sendProblem } from './problems.ts';
import { runRoute, type ApiAnswer, type ApiRoute } from './route.ts';
import { ADMIN_API_PATH } from './scopes.ts';

type Deps = Pick<Services, 'config' | 'limits' | 'audit' | 'log'> & { verify: BearerVerifier };

const tooMany = (retryAfterSeconds: number) =>
  new ApiProblem('too-many-requests', 'Too many calls: wait, then try again.', {
    headers: { 'Retry-After': String(retryAfterSeconds) },
  });

const callerKey = (caller: ApiCaller) =>
  caller.kind === 'client' ? `c:${caller.clientId}` : `p:${caller.userId}:${caller.clientId}`;

const koaPath = (path: string) => path.replace(/\{(\w+)\}/g, ':$1');

/**
 * The admin API under ADMIN_API_PATH: each route checks the bearer token, the caller's rate
 * limit and the route's scope, then the request against its schemas, and is audited with its
 * caller as the actor. Every error is problem+json; nothing else under the path answers.
 */
export function adminApiRouter(deps: Deps, routes: ApiRoute[], version: string): Middleware {
  const { config, limits, audit, log, verify } = deps;
  const router = new Router({ prefix: ADMIN_API_PATH });
  const document = openApiDocument(routes, config.issuer, version);

  router.get('/openapi.json', (ctx) => {
    ctx.body = document;
  });

  /** The record of a call: its operation and answer, with the caller as the actor. */
  const called = (ctx: Context, route: ApiRoute, { actor, client }: CallActor, status: number) =>
    audit(
      {
        type: 'admin_api_call',
        outcome: status < 400 ? 'success' : 'failure',
        actor,
        detail: { operation: route.operationId, status, ...(client && { client }) },
      },
      requestFacts(ctx),
    );

  /** Who calls, or a refusal: made-up tokens meet the limit too, counted by address. */
  async function callerOf(ctx: Context, route: ApiRoute): Promise<ApiCaller> {
    try {
      return await verify(ctx);
    } catch (err) {
      if (!(err instanceof ApiProblem)) throw err;
      // Refusals meet the limit too: a refused person by who they are, a made-up token by address.
      const key = err.actor
        ? `p:${err.actor.actor.id}:${err.actor.client}`
        : err.type === 'invalid-token'
          ? `ip:${senderKey(ctx.ip)}`
          : undefined;
      const verdict = key ? await limits.consume(['admin_api', key]) : { ok: true as const };
      const refusal = verdict.ok ? err : tooMany(verdict.retryAfterSeconds);
      if (err.actor) await called(ctx, route, err.actor, refusal.status);
      throw refusal;
    }
  }

  for (const route of routes)
    router[route.method](koaPath(route.path), async (ctx) => {
      const caller = await callerOf(ctx, route);
      const actor = callActorOf(caller);
      let answer: ApiAnswer;
      try {
        const verdict = await limits.consume(['admin_api', callerKey(caller)]);
        if (!verdict.ok) throw tooMany(verdict.retryAfterSeconds);
        if (!caller.scopes.has(route.scope))
          throw new ApiProblem('insufficient-scope', `This route needs the scope ${route.scope}.`, {
            headers: {
              'WWW-Authenticate': `Bearer realm="latchkey-admin", error="insufficient_scope", scope="${route.scope}"`,
            },
          });
        answer = await runRoute(route, ctx, caller);
      } catch (err) {
        if (err instanceof ApiProblem) await called(ctx, route, actor, err.status);
        throw err;
      }
      // A change committed with its own audit row: its answer (a secret shown once) must not
      // be lost to a failed record of the call. A read is answered only once recorded.
      try {
        await called(ctx, route, actor, answer.status);
      } catch (err) {
        if (route.method === 'get') throw err;
        log.error({ err, operation: route.operationId }, 'admin API call not recorded');
      }
      for (const [name, value] of Object.entries(answer.headers ?? {})) ctx.set(name, value);
      ctx.status = answer.status;
      if (answer.body !== undefined) ctx.body = answer.body;
    });

  const routed = router.routes();
  const under = (path: string) => path === ADMIN_API_PATH || path.startsWith(`${ADMIN_API_PATH}/`);

  return async (ctx, next) => {
    if (!under(ctx.path)) return next();
    // Answers about accounts and clients: never kept by a cache on the way.
    ctx.set('Cache-Control', 'no-store');
    try {
      await routed(ctx as never, async () => {
        const methods = [...new Set(routes.map((r) => r.method.toUpperCase()))];
        const allowed = methods.filter((m) => router.match(ctx.path, m).pathAndMethod.length);
        if (allowed.length)
          throw new ApiProblem('method-not-allowed', `Use ${allowed.join(', ')} here.`, {
            headers: { Allow: allowed.join(', ') },
          });
        throw new ApiProblem('not-found', 'No such route in the admin API.');
      });
    } catch (err) {
      if (err instanceof ApiProblem) return sendProblem(ctx, err);
      if (isUnavailable(err)) {
        log.warn({ error: (err as Error).message }, 'dependency unavailable');
        return sendProblem(
          ctx,
          new ApiProblem(
            'temporarily-unavailable',
            'A dependency did not answer: try again shortly.',
            {
              headers: { 'Retry-After': String(RETRY_AFTER_SECONDS) },
            },
          ),
        );
      }
      (ctx.state.log ?? log).error({ err }, 'admin API error');
      sendProblem(ctx, new ApiProblem('server-error', 'An unexpected error occurred.'));
    }
  };
}
