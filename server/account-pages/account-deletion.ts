import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { requestFacts } from '../audit/audit.ts';
import { csrfBindings } from '../http/csrf-bindings.ts';
import { field, readForm } from '../http/form.ts';
import { deleteAccount, deletionRefused } from '../users/account-deletion.ts';
import { accountOf } from './access.ts';
import type { AccountDeps, AccountPages } from './router.ts';

type Deps = AccountDeps & AccountPages;

const deleteForm = z.object({ password: field.secret(), understood: field.checkbox() });
const TICK = 'Tick the box to confirm that you understand the account cannot be restored.';

/**
 * "Delete my account": after a recent full sign-in, a form that asks for the current password
 * and a tick, then the one deletion (server/users/account-deletion.ts) the CLI uses too.
 */
export function addAccountDeletion(router: Router, deps: Deps): void {
  const { views, csrf, config, recent } = deps;
  const binding = (ctx: Context) => csrfBindings.accountDeletion(accountOf(ctx).sessionId);

  function page(ctx: Context, problems: string[] = [], status = 400) {
    const { user } = accountOf(ctx);
    const refused = deletionRefused(config, user);
    if (refused)
      return views.render(
        ctx,
        'error',
        { title: 'Delete your account', description: refused },
        403,
      );
    views.render(
      ctx,
      'account-delete',
      {
        title: 'Delete your account',
        email: user.email,
        csrf: csrf.token(binding(ctx)),
        problems,
      },
      problems.length ? status : 200,
    );
  }

  router.get('/delete', recent, async (ctx) => page(ctx));

  router.post('/delete', recent, async (ctx) => {
    const { user } = accountOf(ctx);
    if (deletionRefused(config, user)) return page(ctx);
    const form = await readForm(ctx, deleteForm, { csrf, binding: binding(ctx) });
    if (!form.ok) return page(ctx, form.problems);
    const password = await deps.currentPassword(ctx, user, form.fields.password);
    if (!password.ok) return page(ctx, [password.error], password.status);
    if (!form.fields.understood) return page(ctx, [TICK]);
    await deleteAccount(deps, user, { type: 'user', id: user.id }, requestFacts(ctx));
    views.render(ctx, 'account-deleted', { title: 'Your account was deleted', email: user.email });
  });
}
