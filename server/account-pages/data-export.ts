import type Router from '@koa/router';
import type { Context } from 'koa';
import { requestFacts, userEvent } from '../audit/audit.ts';
import { csrfBindings } from '../http/csrf-bindings.ts';
import { noFields, readForm } from '../http/form.ts';
import { exportAccount } from '../users/data-export.ts';
import { accountOf } from './access.ts';
import type { AccountDeps, AccountPages } from './router.ts';

type Deps = AccountDeps & AccountPages;

/**
 * "Download my data": a page with one button, whose POST answers the JSON file. A POST, with the
 * page's CSRF token, so that no other site can make a browser fetch the file (a link, an image
 * or a prefetch cannot), and no cache or history keeps it under a URL. The download asks for a
 * recent sign-in, like a change: it copies everything out at once, and a borrowed session
 * should not be enough for that.
 */
export function addDataExport(router: Router, deps: Deps): void {
  const { views, csrf, complete, recent, audit } = deps;
  const binding = (ctx: Context) => csrfBindings.dataExport(accountOf(ctx).sessionId);

  function page(ctx: Context, problems: string[] = [], status = 400) {
    views.render(
      ctx,
      'account-export',
      { title: 'Download your data', csrf: csrf.token(binding(ctx)), problems },
      problems.length ? status : 200,
    );
  }

  router.get('/export', complete, async (ctx) => page(ctx));

  router.post('/export', recent, async (ctx) => {
    const { user, sessionId } = accountOf(ctx);
    const form = await readForm(ctx, noFields, { csrf, binding: binding(ctx) });
    if (!form.ok) return page(ctx, form.problems);
    const data = await exportAccount(deps, user, sessionId);
    await audit(userEvent('data_exported', user.id), requestFacts(ctx));
    const day = data.exportedAt.slice(0, 10);
    ctx.set('Content-Disposition', `attachment; filename="account-data-${day}.json"`);
    ctx.set('Cache-Control', 'no-store');
    ctx.type = 'application/json; charset=utf-8';
    ctx.body = JSON.stringify(data, null, 2);
  });
}
