import { revokeClientGrantsWithin } from '../../adapters/postgres.ts';
import { ACCOUNT_CLIENT_ID } from '../account-pages/access.ts';
import { clientUseOf } from '../audit/activity.ts';
import type { AuditEvent, RequestFacts } from '../audit/audit.ts';
import { apiScopes, type ApiScopes } from '../interactions/scope-words.ts';
import type { Services } from '../services.ts';

type Deps = Pick<Services, 'db' | 'adapter' | 'consents' | 'clients' | 'audit' | 'log'>;

/** An app a user allowed: what it holds (scopes as granted, per API too) and when it was used. */
export type ConnectedApp = {
  clientId: string;
  name: string;
  scopes: string[];
  apis: ApiScopes[];
  offline: boolean;
  firstUse: Date | undefined;
  lastUse: Date | undefined;
};

/** The name a client registered, or its id when it has none (or is gone). */
export function clientNames(clients: Deps['clients']) {
  const names = new Map<string, Promise<string>>();
  return (clientId: string) => {
    if (clientId === ACCOUNT_CLIENT_ID) return Promise.resolve('your account page');
    let name = names.get(clientId);
    if (!name) {
      name = clients
        .findForProvider(clientId)
        .then((c) => (typeof c?.client_name === 'string' && c.client_name) || clientId);
      names.set(clientId, name);
    }
    return name;
  };
}

/**
 * The apps a user has allowed: each remembered consent and each live grant (a grant outlives a
 * withdrawn consent until it expires, so both are read), with what they hold between them. The
 * account pages' own client is not one: the user did not consent to it.
 */
export async function connectedApps(deps: Deps, userId: string): Promise<ConnectedApp[]> {
  const [consents, grants, use] = await Promise.all([
    deps.consents.list(userId),
    deps.adapter.grantsOf(userId),
    clientUseOf(deps.db, userId),
  ]);
  // Per app: what it holds, when its consent was last given, and when each grant began.
  type Held = {
    scope: Set<string>;
    apis: Map<string, Set<string>>;
    consentAt?: number;
    grants: number[];
  };
  const held = new Map<string, Held>();
  const add = (clientId: string, scope: string, resources: Record<string, string>) => {
    const app: Held = held.get(clientId) ?? { scope: new Set(), apis: new Map(), grants: [] };
    for (const s of scope.split(' ').filter(Boolean)) app.scope.add(s);
    for (const { api, scopes } of apiScopes(resources)) {
      const set = app.apis.get(api) ?? new Set();
      for (const s of scopes) set.add(s);
      app.apis.set(api, set);
    }
    held.set(clientId, app);
    return app;
  };
  for (const c of consents) add(c.clientId, c.scope, c.resources).consentAt = c.updatedAt.getTime();
  for (const { payload } of grants) {
    const clientId = String(payload.clientId);
    if (clientId === ACCOUNT_CLIENT_ID) continue;
    const openid = payload.openid as { scope?: string } | undefined;
    const resources = (payload.resources ?? {}) as Record<string, string>;
    const app = add(clientId, openid?.scope ?? '', resources);
    if (typeof payload.iat === 'number') app.grants.push(payload.iat * 1000);
  }
  const nameOf = clientNames(deps.clients);
  const apps = await Promise.all(
    [...held].map(async ([clientId, app]) => {
      const trail = use.get(clientId);
      // First use: the earliest of the trail, the grants and the consent (each is a use or
      // later than one); last use: the trail's last tokens or the newest grant (a sign-in).
      const first = Math.min(
        app.consentAt ?? Infinity,
        ...app.grants,
        trail?.first.getTime() ?? Infinity,
      );
      const lastUse = Math.max(trail?.last?.getTime() ?? 0, ...app.grants);
      return {
        clientId,
        name: await nameOf(clientId),
        scopes: [...app.scope],
        apis: [...app.apis].map(([api, scopes]) => ({ api, scopes: [...scopes] })),
        offline: app.scope.has('offline_access'),
        firstUse: Number.isFinite(first) ? new Date(first) : undefined,
        lastUse: lastUse ? new Date(lastUse) : undefined,
      };
    }),
  );
  return apps.sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * "Remove access", by the user or an admin: withdraws the remembered consent (the next sign-in
 * to the app asks again) and revokes the app's grants with their refresh and access tokens, on
 * every device. The account pages' own client is not an app the user allowed: nothing to remove.
 */
export async function removeAppAccess(
  deps: Deps,
  userId: string,
  clientId: string,
  actor: AuditEvent['actor'],
  facts: RequestFacts,
): Promise<{ consentWithdrawn: boolean; grantsRevoked: number }> {
  const { db, audit, adapter, log } = deps;
  if (clientId === ACCOUNT_CLIENT_ID) return { consentWithdrawn: false, grantsRevoked: 0 };
  // The consent, the grants (always in PostgreSQL) and the audit row commit together: from then
  // no token of the app works, as oidc-provider refuses one whose grant is gone.
  const { forgot, revoked } = await db.transaction(async (trx) => {
    const forgot = await deps.consents.forget(userId, clientId, trx);
    const revoked = await revokeClientGrantsWithin(trx, userId, clientId);
    if (forgot || revoked.length) {
      const detail = { client: clientId, grants: revoked.length };
      const event = { type: 'consent_withdrawn', outcome: 'success' as const, actor, detail };
      await audit.within(trx, { ...event, subject: userId }, facts);
    }
    return { forgot, revoked };
  });
  // What of those grants Redis holds (access tokens, codes) no longer works: deleted here, or
  // left to expire should Redis not answer.
  try {
    for (const id of revoked) await adapter.revokeGrant(id);
  } catch (err) {
    log.warn({ error: (err as Error).message }, 'revoked grants left to expire');
  }
  return { consentWithdrawn: forgot, grantsRevoked: revoked.length };
}
