import Router from '@koa/router';
import type { Services } from '../services.ts';
import { resetLink } from '../users/reset-link.ts';
import { requestFacts } from '../audit/audit.ts';
import { readForm } from '../http/form.ts';
import { HttpError } from '../http/http-error.ts';
import { linkError } from '../interactions/link-error.ts';

type Deps = Pick<Services, 'config' | 'tokens' | 'securing' | 'views' | 'csrf'>;

/**
 * The "this wasn't me" link of the security emails. Opening it only shows a button (mail
 * scanners open links too); pressing it locks the account and signs it out everywhere, and the
 * page says how to get back in.
 */
export function secureAccountRouter({ config, tokens, securing, views, csrf }: Deps): Router {
  const router = new Router({ prefix: '/secure-account' });
  const formCsrf = (token: string) => `secure-account:${token}`;

  router.get('/', async (ctx) => {
    const token = String(ctx.query.token ?? '');
    const found = await securing.peek(token);
    if (!found.ok) return linkError(views, ctx, found.reason);
    views.render(ctx, 'secure-account', {
      title: 'Secure your account',
      token,
      csrf: csrf.token(formCsrf(token)),
      restoreEmail: found.data.email,
    });
  });

  router.post('/', async (ctx) => {
    const form = await readForm(ctx);
    const token = form.token ?? '';
    if (!csrf.verify(formCsrf(token), form.csrf))
      throw new HttpError(403, 'The form expired. Open the link from the email again.');
    const result = await securing.secure(token, requestFacts(ctx));
    if (!result.ok) return linkError(views, ctx, result.reason);
    const { user, restoredEmail, emailTaken, factorsRemoved } = result.secured;
    // A directory user's password lives in the directory: no reset here, an admin unlocks.
    const directory = user.source === 'ldap';
    views.render(ctx, 'secure-account-done', {
      title: 'Your account is locked',
      email: user.email,
      restoredEmail,
      emailTaken,
      factorsRemoved,
      directoryMessage: directory
        ? (config.ldap?.passwordMessage ?? 'Your password is managed by your organisation.')
        : undefined,
      resetLink: directory ? undefined : await resetLink({ config, tokens }, user),
      resetMinutes: Math.round(config.emailLinks.resetTtl / 60),
    });
  });

  return router;
}
