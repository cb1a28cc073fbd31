import Router from '@koa/router';
import { withDeadline } from '../adapters/outages.ts';
import type { Services } from './services.ts';

const CHECK_TIMEOUT_MS = 2000;

export type ReadinessDeps = Pick<Services, 'db' | 'log'> &
  Partial<Pick<Services, 'redis'>> & {
    ldap?: { check(): Promise<void>; required: boolean } | undefined;
  };

/**
 * Asks each dependency at once: the database and Redis must answer, the directory too when
 * `required` (LDAP_READINESS_REQUIRED); local users can still sign in without it.
 */
export function readinessCheck({ db, redis, ldap, log }: ReadinessDeps) {
  return async () => {
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
    return { ready: !failed, checks: Object.fromEntries(results) as Record<string, 'ok' | 'fail'> };
  };
}

export type ReadinessCheck = ReturnType<typeof readinessCheck>;

/** /healthz: the process answers. /readyz: its dependencies answer too (503 naming what failed). */
export function healthRouter(deps: ReadinessDeps): Router {
  const ready = readinessCheck(deps);
  const router = new Router();
  router.get('/healthz', (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { status: 'ok' };
  });
  router.get('/readyz', async (ctx) => {
    const { ready: ok, checks } = await ready();
    ctx.set('Cache-Control', 'no-store');
    ctx.status = ok ? 200 : 503;
    ctx.body = { status: ok ? 'ok' : 'fail', checks };
  });
  return router;
}
