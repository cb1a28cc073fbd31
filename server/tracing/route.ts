import { context } from '@opentelemetry/api';
import { getRPCMetadata, RPCType } from '@opentelemetry/core';
import type { Middleware } from 'koa';
import { routeOf } from '../metrics/http.ts';

/**
 * Names the request's span after its route template ("POST /interaction/:uid/login"), as the
 * HTTP instrumentation does when told the route (OpenTelemetry HTTP semantic conventions: the
 * server span's name is the method and http.route). The route is read when the response ends,
 * when oidc-provider's routes are known too.
 */
export const traceRoute: Middleware = async (ctx, next) => {
  const rpc = getRPCMetadata(context.active());
  if (rpc?.type === RPCType.HTTP)
    Object.defineProperty(rpc, 'route', {
      // 'other' (no route matched) is a metrics label; a span without a route keeps the method.
      get: () => (routeOf(ctx) === 'other' ? undefined : routeOf(ctx)),
      configurable: true,
    });
  await next();
};
