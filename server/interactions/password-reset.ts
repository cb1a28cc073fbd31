import type Router from '@koa/router';
import type { Services } from '../services.ts';
import { isEmailAddress } from '../users/email-address.ts';
import type { Context } from 'koa';
import { requestFacts, userEvent } from '../audit/audit.ts';
import { resetLinkMail } from '../users/reset-link.ts';
import { newPasswordProblems, passwordContext, passwordSetter } from '../users/new-password.ts';
import { z } from 'zod';
import { csrfBindings } from '../http/csrf-bindings.ts';
import { addEmailLink, linkForm } from '../http/email-link-routes.ts';
import { EMAIL_MAX, field, queryText } from '../http/form.ts';
import type { AnyMailMessage } from '../mail/mailer.ts';
import { isLocked } from '../protection/lockout.ts';
import { accountKey, senderKey } from '../protection/rate-limits.ts';
import { tooManyPage } from '../http/too-many.ts';
import type { InteractionSteps } from './steps.ts';
import { isUnavailable } from '../../adapters/outages.ts';

export type PasswordResetDeps = Pick<
  Services,
  | 'db'
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

const ENTER_EMAIL = 'Enter your email address, like name@example.com.';
const forgotForm = z.object({ email: field.text(ENTER_EMAIL, EMAIL_MAX) });
const resetForm = linkForm.extend({ password: field.secret(), confirm: field.secret() });

/**
 * "Forgot password?" from the login page, and the emailed reset link. The link lives under the
 * interaction's path, so in the browser that asked it can finish the sign-in to the app.
 */
export function addPasswordReset(router: Router, deps: PasswordResetDeps): void {
  const { config, steps, users, tokens, policy, views, csrf } = deps;
  const setPassword = passwordSetter(deps);

  function forgotPage(ctx: Context, uid: string, email: string, error?: string) {
    views.render(
      ctx,
      'forgot',
      {
        title: 'Reset your password',
        uid,
        csrf: csrf.token(csrfBindings.interaction(uid)),
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
      queryText(ctx, 'email') || String(interaction.params.login_hint ?? ''),
    );
  });

  router.post('/forgot', async (ctx) => {
    const form = await steps.readForm(ctx, forgotForm);
    const interaction = await steps.require(ctx);
    const email = form.ok ? form.fields.email : form.input.email;
    if (!form.ok || !isEmailAddress(email))
      return forgotPage(ctx, interaction.uid, email, ENTER_EMAIL);
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

  addEmailLink(router, deps, {
    kind: 'reset',
    path: '/reset',
    purposes: ['reset_password'],
    schema: resetForm,
    spentWithin: true,
    page(ctx, { user, form }, problems) {
      views.render(
        ctx,
        'reset',
        { title: 'Choose a new password', link: form, email: user.email, problems },
        problems.length ? 400 : 200,
      );
    },
    // Spent only on a password that can be used: a typo does not use up the link.
    async check({ user }, { password, confirm }) {
      if (user.disabled || user.source === 'ldap') return 'invalid';
      return newPasswordProblems(policy, password, confirm, passwordContext(user));
    },
    async redeem(ctx, { user, data, spend }, { password }) {
      const facts = requestFacts(ctx);
      const actor = { type: 'user' as const, id: user.id };
      const locked = isLocked(user);
      const { signedInAt } = await setPassword(user, password, {
        event: userEvent('password_reset', user.id),
        facts,
        // The link is spent, the mailbox it proved verified, and no lock stands (not even the
        // one the owner set with "this wasn't me": they chose a password nobody has guessed),
        // with the new password or not at all.
        async alsoWithin(trx) {
          await spend!(trx);
          await users.setEmailVerified(user.id, trx);
          if (!locked) return deps.lockout.succeeded(user, trx);
          await deps.ownerLock.release(user.id, trx);
          await deps.lockout.unlockWithin(trx, user, actor, facts);
        },
      });
      // The password is changed: nothing from here may tell the user it failed.
      try {
        if (locked) await deps.lockout.forgetFailures(user);
        const interaction = await steps.find(ctx);
        if (interaction?.prompt.name === 'login' && data.interaction === interaction.uid)
          return await steps.signedIn(ctx, interaction, user.id, signedInAt);
      } catch (err) {
        if (!isUnavailable(err)) throw err;
        deps.log.warn({ error: (err as Error).message }, 'password reset done, sign-in left');
      }
      views.render(ctx, 'reset-done', { title: 'Your password was changed' });
    },
  });
}
