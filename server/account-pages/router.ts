import Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import type Provider from 'oidc-provider';
import type { Services } from '../services.ts';
import { requestFacts, userEvent } from '../audit/audit.ts';
import { newPasswordProblems, passwordContext, passwordSetter } from '../users/new-password.ts';
import type { User } from '../users/store.ts';
import { z } from 'zod';
import { csrfBindings } from '../http/csrf-bindings.ts';
import { field, readForm } from '../http/form.ts';
import { accountAccess, accountOf, type AccountAccess } from './access.ts';
import { currentPasswordCheck, type CurrentPasswordCheck } from './current-password.ts';
import { addEmailChange } from './email-change.ts';
import { addAccountHome } from './home.ts';
import { addAccountSessions } from './sessions.ts';
import { addMfaSettings } from './mfa-settings.ts';
import { addConnectedApps } from './connected-apps.ts';
import { addSecurityActivity } from './security-activity.ts';
import { addDataRights } from './data-rights.ts';
import { addProfile } from './profile.ts';

export type AccountDeps = Pick<
  Services,
  | 'db'
  | 'adapter'
  | 'audit'
  | 'checkPassword'
  | 'guard'
  | 'mfa'
  | 'passkeys'
  | 'tokens'
  | 'config'
  | 'users'
  | 'passwords'
  | 'policy'
  | 'signOut'
  | 'mailer'
  | 'limits'
  | 'views'
  | 'csrf'
  | 'log'
  | 'factorChanged'
  | 'consents'
  | 'clients'
  | 'ipLocation'
> & { provider: () => Provider };

/** What the account routers get besides their deps: the access levels and the password check. */
export type AccountPages = {
  complete: Middleware;
  recent: Middleware;
  currentPassword: CurrentPasswordCheck;
  factorAdded: AccountAccess['factorAdded'];
};

const passwordForm = z.object({
  current: field.secret(),
  password: field.secret(),
  confirm: field.secret(),
  keep_apps: field.checkbox(),
});

/**
 * The signed-in user's own pages. Each serves only a complete sign-in (the second factor
 * included); a change of password, email or factors asks for a recent one too.
 */
export function accountRouter(deps: AccountDeps): Router {
  const { policy, views, csrf, config } = deps;
  const setPassword = passwordSetter(deps);
  const router = new Router({ prefix: '/account' });
  const access = accountAccess(deps);
  const pages: AccountPages = {
    complete: access.require('complete'),
    recent: access.require('recent'),
    currentPassword: currentPasswordCheck(deps),
    factorAdded: access.factorAdded,
  };
  const { recent } = pages;

  function page(ctx: Context, problems: string[] = [], status = 400) {
    const { user, sessionId } = accountOf(ctx);
    views.render(
      ctx,
      'change-password',
      {
        title: 'Change your password',
        email: user.email,
        csrf: csrf.token(csrfBindings.password(sessionId)),
        problems,
      },
      problems.length ? status : 200,
    );
  }

  /** A directory user changes the password in the directory: the page says where. */
  function directoryPage(ctx: Context, user: User): boolean {
    if (user.source !== 'ldap') return false;
    views.render(ctx, 'error', {
      title: 'Change your password',
      description: config.ldap?.passwordMessage ?? 'Your password is managed elsewhere.',
    });
    return true;
  }

  router.get('/callback', access.callback);

  router.get('/password', recent, async (ctx) => {
    if (directoryPage(ctx, accountOf(ctx).user)) return;
    page(ctx);
  });

  router.post('/password', recent, async (ctx) => {
    const { user, sessionId, grantIds } = accountOf(ctx);
    if (directoryPage(ctx, user)) return;
    const form = await readForm(ctx, passwordForm, {
      csrf,
      binding: csrfBindings.password(sessionId),
    });
    if (!form.ok) return page(ctx, form.problems);
    const { password, confirm } = form.fields;
    const current = await pages.currentPassword(ctx, user, form.fields.current);
    if (!current.ok) return page(ctx, [current.error], current.status);
    const context = passwordContext(user);
    const problems = await newPasswordProblems(policy, password, confirm, context);
    if (problems.length) return page(ctx, problems);

    // Whoever knew the old password is out: other sessions end, and so do the apps' refresh
    // tokens, but for those this browser signed in to when the user asks to keep them.
    await setPassword(user, password, {
      event: userEvent('password_changed', user.id),
      facts: requestFacts(ctx),
      keepSession: sessionId,
      keepGrants: form.fields.keep_apps ? grantIds : [],
    });
    views.render(ctx, 'password-changed', { title: 'Your password was changed' });
  });

  addEmailChange(router, { ...deps, ...pages });
  addMfaSettings(router, { ...deps, ...pages });
  addAccountHome(router, { ...deps, ...pages });
  addAccountSessions(router, { ...deps, ...pages });
  addConnectedApps(router, { ...deps, ...pages });
  addSecurityActivity(router, { ...deps, ...pages });
  addDataRights(router, { ...deps, ...pages });
  addProfile(router, { ...deps, ...pages });
  return router;
}
