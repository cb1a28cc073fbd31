import type Router from '@koa/router';
import type { Services } from '../services.ts';
import { isEmailAddress } from '../users/email-address.ts';
import type { Context } from 'koa';
import { requestFacts, userEvent } from '../audit/audit.ts';
import { resetLinkMail } from '../users/reset-link.ts';
import { newPasswordProblems, passwordContext, passwordSetter } from '../users/new-password.ts';
import type { User } from '../users/store.ts';
import { readForm } from '../http/form.ts';
import { HttpError } from '../http/http-error.ts';
import type { AnyMailMessage } from '../mail/mailer.ts';
import { isLocked } from '../protection/lockout.ts';
import { accountKey, senderKey } from '../protection/rate-limits.ts';
import { tooManyPage } from '../http/too-many.ts';
import { linkError } from './link-error.ts';
import type { InteractionSteps } from './steps.ts';

export type PasswordResetDeps = Pick<
  Services,
  | 'audit'
  | 'limits'
  | 'lockout'
  | 'ownerLock'
  | 'config'
  | 'users'
  | 'tokens'
  | 'mailer'
  | 'policy'
  | 'signOut'
  | 'views'
  | 'csrf'
  | 'log'
> & { steps: InteractionSteps };

/**
 * "Forgot password?" from the login page, and the emailed reset link. The link lives under the
 * interaction's path, so in the browser that asked it can finish the sign-in to the app.
 */
export function addPasswordReset(router: Router, deps: PasswordResetDeps): void {
  const { config, steps, users, tokens, policy, views, csrf } = deps;
  const setPassword = passwordSetter(deps);
  const resetCsrf = (token: string) => `reset:${token}`;

  function forgotPage(ctx: Context, uid: string, email: string, error?: string) {
    views.render(
      ctx,
      'forgot',
      {
        title: 'Reset your password',
        uid,
        csrf: csrf.token(uid),
        email,
        error,
        directoryMessage: config.ldap?.passwordMessage,
      },
      error ? 400 : 200,
    );
  }

  /** The link, if the account can have one; the answer never says whether it exists. */
  async function resetMail(email: string, uid: string): Promise<AnyMailMessage | undefined> {
    const user = await users.findByEmail(email);
    // A directory user's password lives in the directory: the forgot page says so to all.
    if (!user || user.disabled || user.source === 'ldap') return undefined;
    const since = await tokens.secondsSinceLast(user.id, 'reset_password');
    if (since !== undefined && since < config.emailLinks.resendSeconds) return undefined;
    return (await resetLinkMail(deps, user, uid)).mail;
  }

  router.get('/forgot', async (ctx) => {
    const interaction = await steps.require(ctx);
    forgotPage(
      ctx,
      interaction.uid,
      String(ctx.query.email ?? interaction.params.login_hint ?? ''),
    );
  });

  router.post('/forgot', async (ctx) => {
    const interaction = await steps.require(ctx);
    const form = await steps.readForm(ctx, interaction);
    const email = (form.email ?? '').trim();
    if (!isEmailAddress(email))
      return forgotPage(
        ctx,
        interaction.uid,
        email,
        'Enter your email address, like name@example.com.',
      );
    const limited = await deps.limits.consume(
      ['reset_ip', senderKey(ctx.ip)],
      ['reset_account', accountKey(email)],
    );
    if (!limited.ok) return tooManyPage(views, ctx, limited.retryAfterSeconds);
    // In the background: the time to answer must not depend on whether the account exists.
    deps.mailer.sendInBackground(() => resetMail(email, interaction.uid));
    views.render(ctx, 'forgot-sent', {
      title: 'Check your email',
      email,
      minutes: Math.round(config.emailLinks.resetTtl / 60),
    });
  });

  function resetPage(ctx: Context, token: string, user: User, problems: string[] = []) {
    views.render(
      ctx,
      'reset',
      {
        title: 'Choose a new password',
        uid: ctx.params.uid,
        token,
        csrf: csrf.token(resetCsrf(token)),
        email: user.email,
        problems,
      },
      problems.length ? 400 : 200,
    );
  }

  router.get('/reset', async (ctx) => {
    const token = String(ctx.query.token ?? '');
    const found = await tokens.peek(token, 'reset_password');
    if (!found.ok) return linkError(views, ctx, found.reason);
    const user = await users.findById(found.userId);
    if (!user) return linkError(views, ctx, 'invalid');
    resetPage(ctx, token, user);
  });

  router.post('/reset', async (ctx) => {
    const form = await readForm(ctx);
    const token = form.token ?? '';
    if (!csrf.verify(resetCsrf(token), form.csrf))
      throw new HttpError(403, 'The form expired. Open the link from the email again.');
    const found = await tokens.peek(token, 'reset_password');
    if (!found.ok) return linkError(views, ctx, found.reason);
    const user = await users.findById(found.userId);
    if (!user || user.disabled || user.source === 'ldap') return linkError(views, ctx, 'invalid');

    const password = form.password ?? '';
    const problems = await newPasswordProblems(
      policy,
      password,
      form.confirm,
      passwordContext(user),
    );
    if (problems.length) return resetPage(ctx, token, user, problems);

    const redeemed = await tokens.redeem(token, 'reset_password');
    if (!redeemed.ok) return linkError(views, ctx, redeemed.reason);
    // The link proved the mailbox; and whoever knew the old password is signed out everywhere.
    await users.setEmailVerified(user.id);
    const { signedInAt } = await setPassword(user, password);
    await deps.audit(userEvent('password_reset', user.id), requestFacts(ctx));
    // The owner proved the mailbox and chose a password nobody has guessed: no lock stands,
    // not even the one they set themselves with "this wasn't me".
    if (isLocked(user)) {
      await deps.ownerLock.release(user.id);
      await deps.lockout.unlock(user, { type: 'user', id: user.id }, requestFacts(ctx));
    } else await deps.lockout.succeeded(user);

    const interaction = await steps.find(ctx);
    if (interaction?.prompt.name === 'login' && redeemed.data.interaction === interaction.uid)
      return steps.signedIn(ctx, interaction, user.id, signedInAt);
    views.render(ctx, 'reset-done', { title: 'Your password was changed' });
  });
}
