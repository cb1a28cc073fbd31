import type { Middleware } from 'koa';
import type Provider from 'oidc-provider';
import type { KeyManager } from '../keys/manager.ts';
import type { Services } from '../services.ts';
import { auditRoutes } from './audit.ts';
import { directoryRoutes } from './directory.ts';
import { bearerVerifier } from './bearer.ts';
import { clientRoutes } from './clients.ts';
import { keyRoutes } from './keys.ts';
import type { ApiRoute } from './route.ts';
import { adminApiRouter } from './router.ts';
import { userActionRoutes } from './user-actions.ts';
import { userRoutes } from './users.ts';
import { userSessionRoutes } from './user-sessions.ts';

/** Every route of the admin API, each group from its own file. */
export function adminApiRoutes(services: Services, keys: KeyManager): ApiRoute[] {
  return [
    ...keyRoutes({ ...services, keys }),
    ...userRoutes(services),
    ...userActionRoutes(services),
    ...userSessionRoutes(services),
    ...auditRoutes(services),
    ...directoryRoutes(services),
    ...clientRoutes(services),
  ];
}

/** The admin API (ADMIN_API_PATH) as one middleware of the application. */
export function adminApi(
  services: Services,
  provider: () => Provider,
  keys: KeyManager,
): Middleware {
  const verify = bearerVerifier({ ...services, provider, keys });
  return adminApiRouter({ ...services, verify }, adminApiRoutes(services, keys), '1');
}
