import type Router from '@koa/router';
import type { Services } from '../services.ts';
import { isEmailAddress } from '../users/email-address.ts';
import type { Context } from 'koa';
import type { User } from '../users/store.ts';
import { newPasswordProblems } from '../users/new-password.ts';
import { UserExistsError } from '../users/store.ts';
import { z } from 'zod';
import { csrfBindings } from '../http/csrf-bindings.ts';
import { addEmailLink, linkForm } from '../http/email-link-routes.ts';
import { EMAIL_MAX, field, NAME_MAX, queryText } from '../http/form.ts';
import { HttpError } from '../http/http-error.ts';
import type { AnyMailMessage } from '../mail/mailer.ts';
import { requestFacts, userEvent } from '../audit/audit.ts';
import { accountKey, senderKey } from '../protection/rate-limits.ts';
import { tooManyPage } from '../http/too-many.ts';
import type { PasswordResetDeps } from './password-reset.ts';
import type { Interaction } from './steps.ts';

/** With LDAP, an address the directory lists is its person's, not open to registration. */
export type RegistrationDeps = PasswordResetDeps & Pick<Services, 'directory' | 'passwords'>;

const DIRECTORY_DOWN =
  "Accounts cannot be created just now: your organisation's directory cannot be reached. Try again in a few minutes.";
const DIRECTORY_DOWN_VERIFY =
  "Your address cannot be confirmed just now: your organisation's directory cannot be reached. Open the link again in a few minutes.";

type Fields = { email: string; name: string };

const ENTER_EMAIL = 'Enter your email address, like name@example.com.';
const email = field.text(ENTER_EMAIL, EMAIL_MAX);
const registerForm = z.object({
  email,
  name: field.text(`Enter your name in at most ${NAME_MAX} characters.`, NAME_MAX),
  password: field.secret(),
  confirm: field.secret(),
});
const resendForm = z.object({ email });

/**
 * Self-registration from the login page and the email verification that follows it. Whether
 * an address is already taken is never shown, by the answer or by the work done to give it (its
 * owner gets an email instead), as long as verification is required.
 */
export function addRegistration(router: Router, deps: RegistrationDeps) {
  const { config, steps, users, tokens, mailer, policy, views, csrf, log } = deps;
  const { directory, passwords } = deps;
  const { registration, emailLinks } = config;

  function registerPage(
    ctx: Context,
    interaction: Interaction,
    fields: Fields,
    problems: string[] = [],
    status = problems.length ? 400 : 200,
  ) {
    views.render(
      ctx,
      'register',
      {
        title: 'Create your account',
        uid: interaction.uid,
        csrf: csrf.token(csrfBindings.interaction(interaction.uid)),
        ...fields,
        problems,
      },
      status,
    );
  }

  /**
   * The page after registering, after signing in unverified, and after asking again. It says the
   * same whatever happened: the mail goes out in the background (a taken address's owner gets a
   * notice instead; none goes out twice within EMAIL_RESEND_SECONDS), so neither the page nor
   * the time it takes tells which.
   */
  function sentPage(ctx: Context, interaction: Interaction, email: string, again = false) {
    views.render(ctx, 'verify-sent', {
      title: 'Check your email',
      uid: interaction.uid,
      csrf: csrf.token(csrfBindings.interaction(interaction.uid)),
      email,
      again,
      hours: Math.round(emailLinks.verifyTtl / 3600),
    });
  }

  /** A new verification link for the user, unless one went out moments ago. */
  async function verificationMail(user: User, uid: string): Promise<AnyMailMessage | undefined> {
    const since = await tokens.secondsSinceLast(user.id, 'verify_email');
    if (since !== undefined && since < emailLinks.resendSeconds) return undefined;
    const token = await tokens.issue(user.id, 'verify_email', emailLinks.verifyTtl, {
      interaction: uid,
    });
    return {
      to: user.email,
      template: 'verify-email',
      data: {
        link: `${config.issuer}/interaction/${uid}/verify?token=${token}`,
        expiresInHours: Math.round(emailLinks.verifyTtl / 3600),
        name: user.name ?? undefined,
      },
    };
  }

  /** Someone registered with an address that has an account: tell its owner, not the visitor. */
  const ownerNotice = (user: Pick<User, 'email' | 'name'>, uid: string): AnyMailMessage => ({
    to: user.email,
    template: 'registration-attempt',
    data: {
      link: `${config.issuer}/interaction/${uid}`,
      resetLink: `${config.issuer}/interaction/${uid}/forgot`,
      name: user.name ?? undefined,
    },
  });

  /** "Send it again": a new link while the address is unverified, else the owner's notice. */
  async function resendMail(email: string, uid: string): Promise<AnyMailMessage | undefined> {
    const user = email ? await users.findByEmail(email) : undefined;
    if (!user || user.disabled) return undefined;
    if (user.source === 'local' && !user.email_verified) return verificationMail(user, uid);
    return ownerNotice(user, uid);
  }

  /** The new account; undefined when the address is taken. */
  async function createAccount(fields: Fields, password: string): Promise<User | undefined> {
    try {
      return await users.create({ ...fields, password, emailVerified: false });
    } catch (err) {
      if (err instanceof UserExistsError) return undefined;
      throw err;
    }
  }

  /** Whether the directory lists the address; with it down, nobody can tell (so no one registers). */
  async function inDirectory(email: string): Promise<boolean | 'unavailable'> {
    if (!directory) return false;
    try {
      return (await directory.hasEmail(email)) ?? false;
    } catch (err) {
      log.warn({ error: (err as Error).message }, 'directory unavailable at registration');
      return 'unavailable';
    }
  }

  async function registering(ctx: Context): Promise<Interaction> {
    const interaction = await steps.require(ctx);
    if (!registration.enabled) ctx.throw(404, 'Registration is not open.');
    return interaction;
  }

  router.get('/register', async (ctx) => {
    const interaction = await registering(ctx);
    registerPage(ctx, interaction, { email: queryText(ctx, 'email'), name: '' });
  });

  router.post('/register', async (ctx) => {
    const interaction = await registering(ctx);
    const form = await steps.readForm(ctx, interaction, registerForm);
    // Before any costly work (the strength estimate, the hash): a flood of forms costs a count.
    const limited = await deps.limits.consume(['register_ip', senderKey(ctx.ip)]);
    if (!limited.ok) return tooManyPage(views, ctx, limited.retryAfterSeconds);
    if (!form.ok) return registerPage(ctx, interaction, form.input, form.problems);
    const { password, confirm, ...fields } = form.fields;
    const problems: string[] = [];
    if (!isEmailAddress(fields.email)) problems.push(ENTER_EMAIL);
    const domain = fields.email.split('@').pop()!.toLowerCase();
    if (registration.domains.length && !registration.domains.includes(domain))
      problems.push(
        `Accounts can be created only with an address at ${registration.domains.join(', ')}.`,
      );
    if (registration.blockedDomains.includes(domain))
      problems.push(
        `Accounts at ${domain} are managed by your organisation's directory: sign in with your organisation's username and password.`,
      );
    if (!fields.name) problems.push('Enter your name.');
    problems.push(...(await newPasswordProblems(policy, password, confirm, fields)));
    if (problems.length) return registerPage(ctx, interaction, fields, problems);
    const listed = await inDirectory(fields.email);
    if (listed === 'unavailable')
      return registerPage(ctx, interaction, fields, [DIRECTORY_DOWN], 503);

    // An address the directory lists is taken like a local account's: its person signs in with
    // the directory's password. The password is hashed all the same, as creating would.
    const user = listed
      ? void (await passwords.hash(password))
      : await createAccount(fields, password);
    if (!user) {
      if (!registration.verificationRequired)
        return registerPage(ctx, interaction, fields, [
          'An account with this email already exists. Sign in, or reset its password.',
        ]);
      mailer.sendInBackground(async () => {
        const owner = await users.findByEmail(fields.email);
        return ownerNotice(owner ?? { email: fields.email, name: null }, interaction.uid);
      });
      return sentPage(ctx, interaction, fields.email);
    }
    await deps.audit(userEvent('user_registered', user.id), requestFacts(ctx));
    if (!registration.verificationRequired) return steps.signedIn(ctx, interaction, user.id);
    mailer.sendInBackground(() => verificationMail(user, interaction.uid));
    sentPage(ctx, interaction, user.email);
  });

  router.post('/verify/resend', async (ctx) => {
    const interaction = await steps.require(ctx);
    const form = await steps.readForm(ctx, interaction, resendForm);
    // An address too long to be one gets the same page, and nothing is sent.
    if (!form.ok) return sentPage(ctx, interaction, form.input.email, true);
    const { email } = form.fields;
    const limited = await deps.limits.consume(
      ['verify_ip', senderKey(ctx.ip)],
      ['verify_account', accountKey(email)],
    );
    if (!limited.ok) return tooManyPage(views, ctx, limited.retryAfterSeconds);
    mailer.sendInBackground(() => resendMail(email, interaction.uid));
    sentPage(ctx, interaction, email, true);
  });

  addEmailLink(router, deps, {
    kind: 'verify',
    path: '/verify',
    purposes: ['verify_email'],
    schema: linkForm,
    page(ctx, link) {
      views.render(ctx, 'verify', { title: 'Confirm your email address', link: link.form });
    },
    // A local account for an address the directory lists was registered before it listed it,
    // maybe by someone else: never verified, it gives way to the person's directory sign-in.
    async check({ user }) {
      const listed = user.source === 'local' ? await inDirectory(user.email) : false;
      if (listed === 'unavailable') throw new HttpError(503, DIRECTORY_DOWN_VERIFY);
      return listed ? 'invalid' : undefined;
    },
    async redeem(ctx, { user, data }) {
      await users.setEmailVerified(user.id);
      await deps.audit(userEvent('email_verified', user.id), requestFacts(ctx));
      const interaction = await steps.find(ctx);
      if (interaction?.prompt.name === 'login' && data.interaction === interaction.uid)
        return steps.signedIn(ctx, interaction, user.id);
      views.render(ctx, 'verify-done', { title: 'Your email address is verified' });
    },
  });

  return {
    /**
     * After a right password: an account that still has to verify its address is not signed
     * in; it gets (at most once a minute) a new link and the "check your email" page.
     */
    async stopUnverified(ctx: Context, interaction: Interaction, user: User): Promise<boolean> {
      if (!registration.verificationRequired || user.email_verified) return false;
      mailer.sendInBackground(() => verificationMail(user, interaction.uid));
      sentPage(ctx, interaction, user.email);
      return true;
    },
  };
}
