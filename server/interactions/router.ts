import Router from '@koa/router';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { ConsentStore } from '../accounts/consents.ts';
import type { User } from '../accounts/users.ts';
import { HttpError } from '../http/form.ts';
import { consentPage, grantConsent } from './consent.ts';
import { addMfaStep } from './mfa.ts';
import { addPasswordReset, type PasswordResetDeps } from './password-reset.ts';
import { addRegistration } from './registration.ts';
import { requestFacts } from '../audit/audit.ts';
import { maskEmails } from '../log.ts';
import type { Mfa } from '../mfa/mfa.ts';
import { isLocked } from '../protection/lockout.ts';
import type { SignInGuard } from '../protection/sign-in-guard.ts';
import { refuse, waitMessage } from '../protection/too-many.ts';
import { interactionSteps, type Interaction } from './steps.ts';

export type InteractionDeps = Omit<PasswordResetDeps, 'steps'> & {
  provider: () => Provider;
  consents: ConsentStore;
  guard: SignInGuard;
  mfa: Mfa;
  /** Called after each password sign-in, with the user agent and IP (new-device notice). */
  noticeSignIn: (user: User, userAgent: string, ip: string) => void;
};

/** The hosted pages oidc-provider sends the browser to: login, consent, and cancelling. */
export function interactionRouter(deps: InteractionDeps): Router {
  const { provider, users, consents, views, csrf, audit, guard } = deps;
  const router = new Router({ prefix: '/interaction/:uid' });

  const steps = interactionSteps(provider, csrf);
  const registration = addRegistration(router, { ...deps, steps });
  const mfaStep = addMfaStep(router, { ...deps, steps });

  function loginPage(
    ctx: Context,
    interaction: Interaction,
    client: string,
    extra: { email?: string; error?: string; status?: number } = {},
  ) {
    views.render(
      ctx,
      'login',
      {
        title: 'Sign in',
        uid: interaction.uid,
        csrf: csrf.token(interaction.uid),
        client,
        email: extra.email ?? interaction.params.login_hint ?? '',
        error: extra.error,
        canRegister: deps.config.registration.enabled,
      },
      extra.status ?? (extra.error ? 400 : 200),
    );
  }

  router.get('/', async (ctx) => {
    const interaction = await steps.require(ctx);
    const client = await steps.clientName(interaction.params.client_id);
    if (interaction.prompt.name === 'login') return loginPage(ctx, interaction, client);
    if (interaction.prompt.name === 'mfa') return mfaStep.page(ctx, interaction);
    if (interaction.prompt.name === 'consent')
      return consentPage(ctx, { provider: provider(), views, csrf }, interaction, client);
    throw new HttpError(400, `Unsupported step: ${interaction.prompt.name}`);
  });

  router.post('/login', async (ctx) => {
    const interaction = await steps.require(ctx);
    const form = await steps.readForm(ctx, interaction);
    if (interaction.prompt.name !== 'login')
      throw new HttpError(400, 'This step is already complete.');
    const email = (form.email ?? '').trim();
    const clientId = String(interaction.params.client_id);
    const facts = requestFacts(ctx);
    const failure = (reason: string, user?: User) =>
      audit(
        {
          type: 'sign_in',
          outcome: 'failure',
          actor: { type: 'user', id: user?.id },
          subject: user?.id,
          // An unknown "email" may be a password typed in the wrong field: stored masked.
          detail: { reason, client: clientId, ...(!user && { email: maskEmails(email) }) },
        },
        facts,
      );
    const client = () => steps.clientName(interaction.params.client_id);

    const limited = await guard.before(ctx.ip, email);
    if (!limited.ok) {
      await failure('rate_limited', email ? await users.findByEmail(email) : undefined);
      refuse(ctx, limited.retryAfterSeconds);
      return loginPage(ctx, interaction, await client(), {
        email,
        error: waitMessage(limited.retryAfterSeconds),
        status: 429,
      });
    }
    const verified =
      email && form.password ? await users.authenticate(email, form.password) : undefined;
    // A locked account answers like a wrong password, after the same argon2 work.
    const user = verified && !isLocked(verified) ? verified : undefined;
    if (!user) {
      const known = verified ?? (email ? await users.findByEmail(email) : undefined);
      const reason = !known
        ? 'unknown_email'
        : known.disabled
          ? 'disabled'
          : isLocked(known)
            ? 'locked'
            : 'wrong_password';
      await failure(reason, known);
      await guard.failed(ctx.ip, email, known, facts);
      // One message for unknown email, wrong password, locked and disabled (no enumeration).
      return loginPage(ctx, interaction, await client(), {
        email,
        error: 'The email or password is incorrect.',
      });
    }
    await guard.succeeded(email, user);
    const signIn = {
      type: 'sign_in',
      actor: { type: 'user', id: user.id },
      subject: user.id,
    } as const;
    if (await registration.stopUnverified(ctx, interaction, user))
      return audit(
        {
          ...signIn,
          outcome: 'failure',
          detail: { reason: 'email_not_verified', client: clientId },
        },
        facts,
      );
    await audit(
      { ...signIn, outcome: 'success', detail: { method: 'password', client: clientId } },
      facts,
    );
    deps.noticeSignIn(user, ctx.get('user-agent'), ctx.ip);
    await steps.signedIn(ctx, user.id);
  });

  router.post('/consent', async (ctx) => {
    const interaction = await steps.require(ctx);
    await steps.readForm(ctx, interaction);
    if (interaction.prompt.name !== 'consent')
      throw new HttpError(400, 'This step is already complete.');
    const grantId = await grantConsent(provider(), consents, interaction);
    const accountId = interaction.session?.accountId;
    await audit(
      {
        type: 'consent_granted',
        outcome: 'success',
        actor: { type: 'user', id: accountId },
        subject: accountId,
        detail: { client: String(interaction.params.client_id), grant: grantId },
      },
      requestFacts(ctx),
    );
    await steps.finish(ctx, { consent: { grantId } }, true);
  });

  router.post('/abort', async (ctx) => {
    const interaction = await steps.require(ctx);
    await steps.readForm(ctx, interaction);
    await steps.finish(ctx, {
      error: 'access_denied',
      error_description: 'The user declined the request.',
    });
  });

  addPasswordReset(router, { ...deps, steps });
  return router;
}
