import type Router from '@koa/router';
import { isEmailAddress } from '../accounts/email-address.ts';
import type { Context } from 'koa';
import type { EmailTokens } from '../accounts/email-tokens.ts';
import { UserExistsError, type User } from '../accounts/users.ts';
import { HttpError, readForm } from '../http/form.ts';
import { requestFacts, userEvent } from '../audit/audit.ts';
import { linkError } from '../interactions/link-error.ts';
import { secureAccountLink } from '../accounts/secure-account.ts';
import type { AccountDeps } from './router.ts';

const TAKEN = 'Another account uses this address.';

type Deps = AccountDeps & {
  tokens: EmailTokens;
  signedIn: (ctx: Context) => Promise<{ user: User; sessionId: string }>;
};

/**
 * Changing the account's email address: the new address proves itself through an emailed
 * link; only then does it replace the old one, which is told about the change.
 */
export function addEmailChange(router: Router, deps: Deps): void {
  const { config, users, passwords, tokens, mailer, views, csrf, log, signedIn } = deps;

  function page(
    ctx: Context,
    user: User,
    sessionId: string,
    newEmail = '',
    problems: string[] = [],
  ) {
    views.render(
      ctx,
      'change-email',
      {
        title: 'Change your email address',
        email: user.email,
        newEmail,
        csrf: csrf.token(`email:${sessionId}`),
        problems,
      },
      problems.length ? 400 : 200,
    );
  }

  router.get('/email', async (ctx) => {
    const { user, sessionId } = await signedIn(ctx);
    page(ctx, user, sessionId);
  });

  router.post('/email', async (ctx) => {
    const { user, sessionId } = await signedIn(ctx);
    const form = await readForm(ctx);
    if (!csrf.verify(`email:${sessionId}`, form.csrf))
      throw new HttpError(403, 'The form expired. Reload the page and try again.');
    const newEmail = (form.email ?? '').trim();
    const problems: string[] = [];
    if (!(await passwords.verify(user.password_hash, form.current ?? '')).ok)
      problems.push('Your current password is not right.');
    if (!isEmailAddress(newEmail)) problems.push('Enter the new address, like name@example.com.');
    else if (newEmail.toLowerCase() === user.email.toLowerCase())
      problems.push('That is already your address.');
    else if ((await users.findByEmail(newEmail))?.id) problems.push(TAKEN);
    if (problems.length) return page(ctx, user, sessionId, newEmail, problems);

    const token = await tokens.issue(user.id, 'change_email', config.emailLinks.verifyTtl, {
      email: newEmail,
    });
    const sent = await mailer.send({
      to: newEmail,
      template: 'verify-email',
      data: {
        link: `${config.issuer}/account/email/confirm?token=${token}`,
        expiresInHours: Math.round(config.emailLinks.verifyTtl / 3600),
        name: user.name ?? undefined,
      },
    });
    views.render(
      ctx,
      'change-email-sent',
      { title: 'Check your new inbox', newEmail, sent: sent.sent },
      sent.sent ? 200 : 503,
    );
  });

  router.get('/email/confirm', async (ctx) => {
    const token = String(ctx.query.token ?? '');
    const found = await tokens.peek(token, 'change_email');
    if (!found.ok) return linkError(views, ctx, found.reason);
    views.render(ctx, 'verify', {
      title: 'Confirm your new email address',
      action: '/account/email/confirm',
      token,
      csrf: csrf.token(`email-confirm:${token}`),
    });
  });

  router.post('/email/confirm', async (ctx) => {
    const form = await readForm(ctx);
    const token = form.token ?? '';
    if (!csrf.verify(`email-confirm:${token}`, form.csrf))
      throw new HttpError(403, 'The form expired. Open the link from the email again.');
    const redeemed = await tokens.redeem(token, 'change_email');
    if (!redeemed.ok) return linkError(views, ctx, redeemed.reason);
    const user = await users.findById(redeemed.userId);
    if (!user) return linkError(views, ctx, 'invalid');
    const newEmail = String(redeemed.data.email);
    try {
      await users.setEmail(user.id, newEmail);
    } catch (err) {
      if (!(err instanceof UserExistsError)) throw err;
      throw new HttpError(409, `${TAKEN} Your address was not changed.`);
    }
    await deps.audit(userEvent('email_changed', user.id), requestFacts(ctx));
    // To the old address, with a link that gives it back (server/accounts/secure-account.ts).
    secureAccountLink(deps, user.id, 'email_changed', user.email)
      .then((secure) =>
        mailer.send({
          to: user.email,
          template: 'email-changed',
          data: { newEmail, time: new Date(), ...secure, name: user.name ?? undefined },
        }),
      )
      .catch((err) => log.error({ err }, 'email changed notice failed'));
    views.render(ctx, 'change-email-done', { title: 'Your email address was changed', newEmail });
  });
}
