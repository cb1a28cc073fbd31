import Router from '@koa/router';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { Config } from '../../config/load.ts';
import { requestFacts, userEvent, type Audit } from '../audit/audit.ts';
import { newPasswordProblems, passwordContext, passwordSetter } from '../accounts/new-password.ts';
import type { EmailTokens } from '../accounts/email-tokens.ts';
import type { CheckPassword } from '../accounts/password-check.ts';
import type { AccountSignOut } from '../accounts/sign-out.ts';
import type { User, UserStore } from '../accounts/users.ts';
import { HttpError, readForm } from '../http/form.ts';
import type { Logger } from '../log.ts';
import type { Mfa } from '../mfa/mfa.ts';
import type { Passkeys } from '../mfa/passkeys.ts';
import type { Mailer } from '../mail/mailer.ts';
import type { Csrf } from '../security/csrf.ts';
import type { PasswordPolicy } from '../security/password-policy.ts';
import type { PasswordHasher } from '../security/passwords.ts';
import type { Views } from '../views.ts';
import { addEmailChange } from './email-change.ts';
import { addMfaSettings } from './mfa-settings.ts';

export type AccountDeps = {
  audit: Audit;
  checkPassword: CheckPassword;
  mfa: Mfa;
  passkeys: Passkeys;
  tokens: EmailTokens;
  config: Config;
  provider: () => Provider;
  users: UserStore;
  passwords: PasswordHasher;
  policy: PasswordPolicy;
  signOut: AccountSignOut;
  mailer: Mailer;
  views: Views;
  csrf: Csrf;
  log: Logger;
};

/** The signed-in user's own pages. For now: changing the password and the email address. */
export function accountRouter(deps: AccountDeps): Router {
  const { config, provider, users, passwords, policy, views, csrf } = deps;
  const setPassword = passwordSetter(deps);
  const router = new Router({ prefix: '/account' });

  /** The user of this browser's session, with the session id; 401 page when there is none. */
  async function signedIn(ctx: Context): Promise<{ user: User; sessionId: string }> {
    const session = await provider().Session.get(ctx as never);
    const user = session.accountId ? await users.findById(session.accountId) : undefined;
    if (!user || user.disabled)
      throw new HttpError(
        401,
        'You are not signed in. Sign in to one of your applications, then open this page again.',
      );
    return { user, sessionId: session.jti };
  }

  function page(ctx: Context, user: User, sessionId: string, problems: string[] = []) {
    views.render(
      ctx,
      'change-password',
      {
        title: 'Change your password',
        email: user.email,
        csrf: csrf.token(`password:${sessionId}`),
        problems,
      },
      problems.length ? 400 : 200,
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

  router.get('/password', async (ctx) => {
    const { user, sessionId } = await signedIn(ctx);
    if (directoryPage(ctx, user)) return;
    page(ctx, user, sessionId);
  });

  router.post('/password', async (ctx) => {
    const { user, sessionId } = await signedIn(ctx);
    if (directoryPage(ctx, user)) return;
    const form = await readForm(ctx);
    if (!csrf.verify(`password:${sessionId}`, form.csrf))
      throw new HttpError(403, 'The form expired. Reload the page and try again.');
    const password = form.password ?? '';
    if (!(await passwords.verify(user.password_hash, form.current ?? '')).ok)
      return page(ctx, user, sessionId, ['Your current password is not right.']);
    const problems = await newPasswordProblems(
      policy,
      password,
      form.confirm,
      passwordContext(user),
    );
    if (problems.length) return page(ctx, user, sessionId, problems);

    await setPassword(user, password, { keepSession: sessionId });
    await deps.audit(userEvent('password_changed', user.id), requestFacts(ctx));
    views.render(ctx, 'password-changed', { title: 'Your password was changed' });
  });

  addEmailChange(router, { ...deps, signedIn });
  addMfaSettings(router, { ...deps, signedIn });
  return router;
}
