import Router from '@koa/router';
import type { Services } from '../services.ts';
import { resetLink } from '../users/reset-link.ts';
import { SECURE_ACCOUNT_PURPOSES } from '../users/secure-account.ts';
import { requestFacts } from '../audit/audit.ts';
import { addEmailLink, linkForm } from '../http/email-link-routes.ts';

type Deps = Pick<Services, 'config' | 'tokens' | 'users' | 'securing' | 'views' | 'csrf'>;

/**
 * The "this wasn't me" link of the security emails. Pressing its button locks the account and
 * signs it out everywhere, and the page says how to get back in.
 */
export function secureAccountRouter(deps: Deps): Router {
  const { config, tokens, securing, views } = deps;
  const router = new Router({ prefix: '/secure-account' });
  addEmailLink(router, deps, {
    kind: 'secure-account',
    path: '/',
    purposes: SECURE_ACCOUNT_PURPOSES,
    // An earlier link outlives a later one: the thief's cannot use up the owner's, and the
    // owner who presses a later notice's link can still press an earlier one (the new sign-in
    // that came before a factor was added, say).
    keepEarlier: true,
    schema: linkForm,
    page(ctx, link) {
      views.render(ctx, 'secure-account', {
        title: 'Secure your account',
        link: link.form,
        restoreEmail: link.data.email,
      });
    },
    async redeem(ctx, link) {
      const secured = await securing.secure(link, requestFacts(ctx));
      const { user, restoredEmail, emailTaken, factorsRemoved } = secured;
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
    },
  });
  return router;
}
