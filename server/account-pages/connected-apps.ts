import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { revokeClientGrantsWithin } from '../../adapters/postgres.ts';
import { clientUseOf } from '../audit/activity.ts';
import { requestFacts, userEvent } from '../audit/audit.ts';
import { csrfBindings } from '../http/csrf-bindings.ts';
import { field, readForm } from '../http/form.ts';
import { apiScopes, scopeWords, type ApiScopes } from '../interactions/scope-words.ts';
import { ACCOUNT_CLIENT_ID, accountOf } from './access.ts';
import type { AccountDeps, AccountPages } from './router.ts';

type Deps = AccountDeps & AccountPages;

const removeForm = z.object({ client: field.hidden() });

export type ConnectedApp = {
  clientId: string;
  name: string;
  scopes: string[];
  apis: ApiScopes[];
  offline: boolean;
  firstUse: string | undefined;
  lastUse: string | undefined;
};

const day = new Intl.DateTimeFormat('en-GB', { dateStyle: 'medium', timeZone: 'UTC' });
const words = (scope: Set<string>) => scopeWords([...scope]);

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
        scopes: words(app.scope),
        apis: [...app.apis].map(([api, scopes]) => ({ api, scopes: [...scopes] })),
        offline: app.scope.has('offline_access'),
        firstUse: Number.isFinite(first) ? day.format(first) : undefined,
        lastUse: lastUse ? day.format(lastUse) : undefined,
      };
    }),
  );
  return apps.sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * The connected apps page: what each app the user allowed may do, and "Remove access", which
 * withdraws the remembered consent (the next sign-in to the app asks again) and revokes the
 * app's grants with their refresh and access tokens, on every device.
 */
export function addConnectedApps(router: Router, deps: Deps): void {
  const { db, audit, adapter, csrf, views, log, complete } = deps;

  /** `removed`: the name of the app whose access was removed, or '' when there was none to remove. */
  async function page(ctx: Context, removed?: string) {
    const { user, sessionId } = accountOf(ctx);
    views.render(ctx, 'account-apps', {
      title: 'Connected apps',
      apps: await connectedApps(deps, user.id),
      removed,
      nothingRemoved: removed === '',
      csrf: csrf.token(csrfBindings.apps(sessionId)),
    });
  }

  router.get('/apps', complete, (ctx) => page(ctx));

  // Removing access takes no recent sign-in: it only ever takes something away, and the user
  // can allow the app again at its next sign-in; whoever holds the session could do more harm
  // on any other page it opens.
  router.post('/apps/remove', complete, async (ctx) => {
    const { user, sessionId } = accountOf(ctx);
    const form = await readForm(ctx, removeForm, { csrf, binding: csrfBindings.apps(sessionId) });
    const clientId = form.ok ? form.fields.client : '';
    let revoked: string[] = [];
    let forgot = false;
    if (clientId && clientId !== ACCOUNT_CLIENT_ID)
      // The consent, the grants (always in PostgreSQL) and the audit row commit together: from
      // then no token of the app works, as oidc-provider refuses one whose grant is gone.
      await db.transaction(async (trx) => {
        forgot = await deps.consents.forget(user.id, clientId, trx);
        revoked = await revokeClientGrantsWithin(trx, user.id, clientId);
        if (!forgot && !revoked.length) return;
        const detail = { client: clientId, grants: revoked.length };
        await audit.within(trx, userEvent('consent_withdrawn', user.id, detail), requestFacts(ctx));
      });
    // What of those grants Redis holds (access tokens, codes) no longer works: deleted here,
    // or left to expire should Redis not answer.
    try {
      for (const id of revoked) await adapter.revokeGrant(id);
    } catch (err) {
      log.warn({ error: (err as Error).message }, 'revoked grants left to expire');
    }
    await page(ctx, forgot || revoked.length ? await clientNames(deps.clients)(clientId) : '');
  });
}
