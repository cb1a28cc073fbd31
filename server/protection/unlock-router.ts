import Router from '@koa/router';
import type { Services } from '../services.ts';
import { requestFacts } from '../audit/audit.ts';
import { addEmailLink, linkForm } from '../http/email-link-routes.ts';

type Deps = Pick<Services, 'tokens' | 'users' | 'lockout' | 'views' | 'csrf'>;

/** The unlock link of the account-locked email. */
export function unlockRouter(deps: Deps): Router {
  const { lockout, views } = deps;
  const router = new Router({ prefix: '/unlock' });
  addEmailLink(router, deps, {
    kind: 'unlock',
    path: '/',
    purposes: ['unlock_account'],
    schema: linkForm,
    page: (ctx, link) =>
      views.render(ctx, 'unlock', { title: 'Unlock your account', link: link.form }),
    async redeem(ctx, { user }) {
      await lockout.unlock(user, { type: 'user', id: user.id }, requestFacts(ctx));
      views.render(ctx, 'unlock-done', { title: 'Your account is unlocked' });
    },
  });
  return router;
}
