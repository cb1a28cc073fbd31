import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { requestFacts } from '../audit/audit.ts';
import { csrfBindings } from '../http/csrf-bindings.ts';
import { field, readForm } from '../http/form.ts';
import { scopeWords } from '../interactions/scope-words.ts';
import { clientNames, connectedApps, removeAppAccess } from '../users/connected-apps.ts';
import { accountOf } from './access.ts';
import type { AccountDeps, AccountPages } from './router.ts';

type Deps = AccountDeps & AccountPages;

const removeForm = z.object({ client: field.hidden() });

const day = new Intl.DateTimeFormat('en-GB', { dateStyle: 'medium', timeZone: 'UTC' });
const dayOf = (date: Date | undefined) => (date ? day.format(date) : undefined);

/**
 * The connected apps page: what each app the user allowed may do, and "Remove access", which
 * withdraws the remembered consent (the next sign-in to the app asks again) and revokes the
 * app's grants with their refresh and access tokens, on every device.
 */
export function addConnectedApps(router: Router, deps: Deps): void {
  const { csrf, views, complete } = deps;

  /** `removed`: the name of the app whose access was removed, or '' when there was none to remove. */
  async function page(ctx: Context, removed?: string) {
    const { user, sessionId } = accountOf(ctx);
    const apps = (await connectedApps(deps, user.id)).map((app) => ({
      ...app,
      scopes: scopeWords(app.scopes),
      firstUse: dayOf(app.firstUse),
      lastUse: dayOf(app.lastUse),
    }));
    views.render(ctx, 'account-apps', {
      title: 'Connected apps',
      apps,
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
    const actor = { type: 'user' as const, id: user.id };
    const removed = clientId
      ? await removeAppAccess(deps, user.id, clientId, actor, requestFacts(ctx))
      : { consentWithdrawn: false, grantsRevoked: 0 };
    const any = removed.consentWithdrawn || removed.grantsRevoked > 0;
    await page(ctx, any ? await clientNames(deps.clients)(clientId) : '');
  });
}
