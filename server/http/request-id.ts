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
    ctx.state.log = log.child({ requestId: id });
    ctx.set('X-Request-Id', id);
    const started = performance.now();
    try {
      await next();
    } finally {
      const entry = {
        method: ctx.method,
        path: ctx.path,
        status: ctx.status,
        ms: Math.round((performance.now() - started) * 10) / 10,
      };
      // Successful requests at debug: an info line per token request costs real throughput.
      if (ctx.status >= 500) ctx.state.log.error(entry, 'request failed');
      else if (ctx.status >= 400) ctx.state.log.info(entry, 'request refused');
      else ctx.state.log.debug(entry, 'request');
    }
  };
}
