import type Provider from 'oidc-provider';
import type { Metrics } from './metrics.ts';

type Entities = { AccessToken?: { format?: string }; ClientCredentials?: { format?: string } };

/** oidc-provider's detail for a spent refresh token presented again (error_detail). */
const REFRESH_REUSED = 'refresh token already used';

/**
 * Counts the token endpoint's outcomes into `metrics`: tokens issued (by grant type and access
 * token format), refresh rotations and reuse, revocations and introspections. Nothing is added
 * when metrics are off.
 */
export function countProtocolEvents(provider: Provider, metrics: Metrics): void {
  if (!metrics.enabled) return;
  provider.on('grant.success', (ctx) => {
    const grantType = String(ctx.oidc.params?.grant_type);
    const entities = ctx.oidc.entities as Entities;
    const format = entities.AccessToken?.format ?? entities.ClientCredentials?.format ?? 'none';
    metrics.tokensIssued.inc({ grant_type: grantType, format });
    if (grantType === 'refresh_token') metrics.refreshRotations.inc();
  });
  provider.on('grant.error', (_ctx, err) => {
    if ((err as { error_detail?: string }).error_detail === REFRESH_REUSED)
      metrics.refreshReuse.inc();
  });
  provider.use(async (ctx, next) => {
    await next();
    const route = ctx.oidc?.route;
    if (route === 'revocation' && ctx.status === 200) metrics.revocations.inc();
    if (route === 'introspection') {
      const active = (ctx.body as { active?: unknown } | undefined)?.active;
      const result = ctx.status !== 200 ? 'error' : active ? 'active' : 'inactive';
      metrics.introspections.inc({ result });
    }
  });
}
