import { join } from 'node:path';
import Koa from 'koa';
import type Provider from 'oidc-provider';
import { accountRouter } from './account-pages/router.ts';
import { adminApi } from './admin-api/api.ts';
import { healthRouter, readinessCheck } from './health.ts';
import { clientAddress } from './http/client-address.ts';
import { errorPages } from './http/errors.ts';
import { homePage } from './http/home.ts';
import { ownRoutes } from './http/own-routes.ts';
import { issuerOrigin } from './http/issuer-origin.ts';
import { requestId } from './http/request-id.ts';
import { securityHeaders } from './http/security-headers.ts';
import { staticFiles } from './http/static-files.ts';
import { interactionRouter } from './interactions/router.ts';
import { httpMetrics } from './metrics/http.ts';
import { sampleState } from './metrics/state.ts';
import { startKeyManager } from './keys/manager.ts';
import { secureAccountRouter } from './protection/secure-account-router.ts';
import { unlockRouter } from './protection/unlock-router.ts';
import { createProvider } from './provider.ts';
import { createServices, type ServiceDeps } from './services.ts';
import { VIEWS_DIR } from './views.ts';

/** Builds the whole HTTP application over the given storage, without listening. */
export async function buildApp(deps: ServiceDeps) {
  const services = createServices(deps);
  const { config, db, log, views, audit, tokenLimit, directory, metrics } = services;
  // The first password checked must not wait for zxcvbn's threads to build their dictionaries.
  services.strength.start();
  // A client changed by another process (or the CLI) is read again here at once.
  services.clients.listenForChanges();

  // The provider is rebuilt when the signing keys change; requests use whichever is current.
  let provider: Provider | undefined;
  let providerCallback: ReturnType<Provider['callback']> | undefined;
  const keys = await startKeyManager({
    db,
    config,
    log,
    audit,
    onChange(view) {
      provider = createProvider(services, view.jwks);
      tokenLimit.countIn(provider);
      providerCallback = provider.callback();
    },
  });
  const currentProvider = () => provider as Provider;

  // Forwarded headers reach Koa only from named proxies: clientAddress() drops the rest.
  const app = new Koa({ proxy: true });
  app.silent = true;
  app.on('error', (err) => log.error({ err }, 'koa error'));

  const readiness = {
    ...services,
    ldap: directory && {
      check: () => directory.check(),
      required: config.ldap!.readinessRequired,
    },
  };
  sampleState(metrics, {
    ...services,
    ready: readinessCheck(readiness),
    keys,
    keySchedule: config.keys,
  });

  // Every request passes these steps, in this order.
  if (metrics.enabled) app.use(httpMetrics(metrics));
  // Loaded only with tracing on: @opentelemetry/core is otherwise idle heap.
  if (config.tracing.endpoint) app.use((await import('./tracing/route.ts')).traceRoute);
  app.use(clientAddress(config.trustProxy));
  app.use(issuerOrigin(config.issuer));
  app.use(requestId(log));
  app.use(securityHeaders({ hsts: config.issuer.startsWith('https://') }));
  app.use(errorPages(views));
  app.use(staticFiles(join(VIEWS_DIR, 'static')));
  app.use(homePage(views, config.productName));
  app.use(adminApi(services, currentProvider, keys));
  app.use(
    ownRoutes([
      healthRouter(readiness),
      interactionRouter({ ...services, provider: currentProvider }),
      accountRouter({ ...services, provider: currentProvider }),
      unlockRouter(services),
      secureAccountRouter(services),
    ]),
  );
  app.use(tokenLimit.refuseBlocked);
  app.use(async (ctx) => {
    ctx.respond = false;
    await providerCallback!(ctx.req, ctx.res);
  });

  return { ...services, app, provider: currentProvider, keys };
}

export type Latchkey = Awaited<ReturnType<typeof buildApp>>;
