import Router from '@koa/router';
import type { Services } from '../services.ts';
import { requestFacts } from '../audit/audit.ts';
import { readForm } from '../http/form.ts';
import { HttpError } from '../http/http-error.ts';
import { linkError } from '../interactions/link-error.ts';

type Deps = Pick<Services, 'tokens' | 'users' | 'lockout' | 'views' | 'csrf'>;

/** The unlock link of the account-locked email: a button (mail scanners open links too). */
export function unlockRouter({ tokens, users, lockout, views, csrf }: Deps): Router {
  const router = new Router({ prefix: '/unlock' });
  const formCsrf = (token: string) => `unlock:${token}`;

  router.get('/', async (ctx) => {
    const token = String(ctx.query.token ?? '');
    const found = await tokens.peek(token, 'unlock_account');
    if (!found.ok) return linkError(views, ctx, found.reason);
    views.render(ctx, 'unlock', {
      title: 'Unlock your account',
      token,
      csrf: csrf.token(formCsrf(token)),
    });
  });

  router.post('/', async (ctx) => {
    const form = await readForm(ctx);
    const token = form.token ?? '';
    if (!csrf.verify(formCsrf(token), form.csrf))
      throw new HttpError(403, 'The form expired. Open the link from the email again.');
    const redeemed = await tokens.redeem(token, 'unlock_account');
    if (!redeemed.ok) return linkError(views, ctx, redeemed.reason);
    const user = await users.findById(redeemed.userId);
    if (!user) return linkError(views, ctx, 'invalid');
    await lockout.unlock(user, { type: 'user', id: user.id }, requestFacts(ctx));
    views.render(ctx, 'unlock-done', { title: 'Your account is unlocked' });
  });

  return router;
}
