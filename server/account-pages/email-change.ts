import type Router from '@koa/router';
import { isEmailAddress } from '../users/email-address.ts';
import type { Context } from 'koa';
import { UserExistsError, type User } from '../users/store.ts';
import { z } from 'zod';
import { csrfBindings } from '../http/csrf-bindings.ts';
import { addEmailLink, linkForm } from '../http/email-link-routes.ts';
import { EMAIL_MAX, field, readForm } from '../http/form.ts';
import { HttpError } from '../http/http-error.ts';
import { requestFacts, userEvent } from '../audit/audit.ts';
import { secureAccountLink } from '../users/secure-account.ts';
import { emailChangeMail } from '../users/email-change.ts';
import type { AnyMailMessage } from '../mail/mailer.ts';
import { refuse, waitMessage } from '../http/too-many.ts';
import { accountOf } from './access.ts';
import { FROM_DIRECTORY } from './profile.ts';
import type { AccountDeps, AccountPages } from './router.ts';

const TAKEN = 'Another account uses this address.';
const ENTER_ADDRESS = 'Enter the new address, like name@example.com.';

const emailForm = z.object({
  email: field.text(ENTER_ADDRESS, EMAIL_MAX),
  current: field.secret(),
});

type Deps = AccountDeps & AccountPages;

/**
 * Changing the account's email address: the new address proves itself through an emailed
 * link; only then does it replace the old one, which is told about the change. The page answers
 * the same whether or not another account has the address (that owner is told instead).
 */
export function addEmailChange(router: Router, deps: Deps): void {
  const { config, users, tokens, mailer, views, csrf, limits, recent } = deps;

  function page(ctx: Context, newEmail = '', problems: string[] = [], status = 400) {
    const { user, sessionId } = accountOf(ctx);
    views.render(
      ctx,
      'change-email',
      {
        title: 'Change your email address',
        email: user.email,
        newEmail,
        csrf: csrf.token(csrfBindings.email(sessionId)),
        problems,
      },
      problems.length ? status : 200,
    );
  }

  /** The link to the new address, or (when another account has it) a word to that account. */
  async function newAddressMail(user: User, newEmail: string): Promise<AnyMailMessage> {
    const owner = await users.findByEmail(newEmail);
    if (owner)
      return {
        to: newEmail,
        template: 'email-in-use',
        data: { link: `${config.issuer}/`, name: owner.name ?? undefined },
      };
    return emailChangeMail({ config, tokens }, user, newEmail);
  }

  /**
   * A directory user's address is the directory's: the next sign-in or sync would put it back
   * (server/ldap/linked-users.ts planLink), so it is not changed here at all.
   */
  function directoryPage(ctx: Context, user: User, status: number): boolean {
    if (user.source !== 'ldap') return false;
    const title = 'Change your email address';
    views.render(ctx, 'error', { title, description: FROM_DIRECTORY }, status);
    return true;
  }

  router.get('/email', recent, async (ctx) => {
    if (!directoryPage(ctx, accountOf(ctx).user, 200)) page(ctx);
  });

  router.post('/email', recent, async (ctx) => {
    const { user, sessionId } = accountOf(ctx);
    if (directoryPage(ctx, user, 403)) return;
    const form = await readForm(ctx, emailForm, { csrf, binding: csrfBindings.email(sessionId) });
    if (!form.ok) return page(ctx, form.input.email, form.problems);
    const { email: newEmail, current } = form.fields;
    // The password first: nothing about the address is said to whoever does not know it.
    const password = await deps.currentPassword(ctx, user, current);
    if (!password.ok) return page(ctx, newEmail, [password.error], password.status);
    if (!isEmailAddress(newEmail)) return page(ctx, newEmail, [ENTER_ADDRESS]);
    if (newEmail.toLowerCase() === user.email.toLowerCase())
      return page(ctx, newEmail, ['That is already your address.']);
    const limited = await limits.consume(['email_change', user.id]);
    if (!limited.ok) {
      refuse(ctx, limited.retryAfterSeconds);
      return page(ctx, newEmail, [waitMessage(limited.retryAfterSeconds)], 429);
    }
    // In the background: whichever mail goes, the answer comes as fast.
    mailer.sendInBackground(() => newAddressMail(user, newEmail));
    views.render(ctx, 'change-email-sent', { title: 'Check your new inbox', newEmail });
  });

  addEmailLink(router, deps, {
    kind: 'email-confirm',
    path: '/email/confirm',
    purposes: ['change_email'],
    schema: linkForm,
    page(ctx, link) {
      views.render(ctx, 'verify', { title: 'Confirm your new email address', link: link.form });
    },
    async redeem(ctx, { user, data }) {
      const newEmail = String(data.email);
      if (user.source === 'ldap') throw new HttpError(403, FROM_DIRECTORY);
      try {
        await users.setEmail(user.id, newEmail);
      } catch (err) {
        if (!(err instanceof UserExistsError)) throw err;
        throw new HttpError(409, `${TAKEN} Your address was not changed.`);
      }
      await deps.audit(userEvent('email_changed', user.id), requestFacts(ctx));
      // To the old address, with a link that gives it back (server/users/secure-account.ts).
      const at = new Date();
      mailer.sendInBackground(async () => ({
        to: user.email,
        template: 'email-changed',
        data: {
          newEmail,
          time: new Date(),
          ...(await secureAccountLink(deps, user.id, 'email_changed', {
            at,
            restoreEmail: user.email,
          })),
          name: user.name ?? undefined,
        },
      }));
      views.render(ctx, 'change-email-done', {
        title: 'Your email address was changed',
        newEmail,
      });
    },
  });
}
