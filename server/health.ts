import Router from '@koa/router';
import { withDeadline } from '../adapters/outages.ts';
import type { Services } from './services.ts';

const CHECK_TIMEOUT_MS = 2000;

/**
 * /healthz: the process answers. /readyz: the database and Redis answer too (503 naming what
 * failed). The directory is checked when configured; its failure fails readiness only when
 * `required` (LDAP_READINESS_REQUIRED): local users can still sign in without it.
 */
export function healthRouter({
  db,
  redis,
  ldap,
  log,
}: Pick<Services, 'db' | 'log'> &
  Partial<Pick<Services, 'redis'>> & {
    ldap?: { check(): Promise<void>; required: boolean } | undefined;
  }): Router {
  const router = new Router();
  router.get('/healthz', (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { status: 'ok' };
  });
  router.get('/readyz', async (ctx) => {
    const checks: Record<string, () => Promise<unknown>> = { database: () => db.raw('SELECT 1') };
    if (redis) checks.redis = () => redis.ping();
    if (ldap) checks.ldap = () => ldap.check();
    const results = await Promise.all(
      Object.entries(checks).map(async ([name, check]) => {
        try {
          await withDeadline(check(), CHECK_TIMEOUT_MS, name);
          return [name, 'ok'] as const;
        } catch (err) {
          // The detail (hosts, ports) goes to the log, not to whoever asks.
          log.warn({ check: name, error: (err as Error).message }, `readiness: ${name} failed`);
          return [name, 'fail'] as const;
        }
      }),
    );
    const failed = results.some(([name, r]) => r !== 'ok' && (name !== 'ldap' || ldap?.required));
    ctx.set('Cache-Control', 'no-store');
    ctx.status = failed ? 503 : 200;
    ctx.body = { status: failed ? 'fail' : 'ok', checks: Object.fromEntries(results) };
  });
  return router;
}
