import { randomUUID } from 'node:crypto';
import type { Middleware } from 'koa';
import type { Logger } from '../log.ts';

const SAFE_ID = /^[\w.-]{1,128}$/;

/** Takes a sane X-Request-Id from the caller or makes one; echoes it and logs each request with it. */
export function requestId(log: Logger): Middleware {
  return async (ctx, next) => {
    const incoming = ctx.get('x-request-id');
    const id = SAFE_ID.test(incoming) ? incoming : randomUUID();
    ctx.state.requestId = id;
    // Made when first used: most requests log nothing (a child logger costs about 1% of a token
    // request's CPU).
    let child: Logger | undefined;
    Object.defineProperty(ctx.state, 'log', {
      get: () => (child ??= log.child({ requestId: id })),
      enumerable: true,
    });
    ctx.set('X-Request-Id', id);
    const started = performance.now();
    try {
      await next();
    } finally {
      // Successful requests at debug: an info line per token request costs real throughput.
      const [level, message] = outcomeOf(ctx.status);
      if (log.isLevelEnabled(level)) {
        const ms = Math.round((performance.now() - started) * 10) / 10;
        const entry = { method: ctx.method, path: ctx.path, status: ctx.status, ms };
        (ctx.state.log as Logger)[level](entry, message);
      }
    }
  };
}

const outcomeOf = (status: number) =>
  status >= 500
    ? (['error', 'request failed'] as const)
    : status >= 400
      ? (['info', 'request refused'] as const)
      : (['debug', 'request'] as const);
