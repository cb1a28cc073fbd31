import Router from '@koa/router';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { Services } from '../services.ts';
import { isEmailAddress } from '../users/email-address.ts';
import type { User } from '../users/store.ts';
import { z } from 'zod';
import { csrfBindings } from '../http/csrf-bindings.ts';
import { EMAIL_MAX, field, noFields } from '../http/form.ts';
import { HttpError } from '../http/http-error.ts';
import { consentPage, grantConsent } from './consent.ts';
import { addMfaStep } from './mfa.ts';
import { addPasskeyLogin } from './passkey-login.ts';
import { addPasswordReset } from './password-reset.ts';
import { addRegistration, type RegistrationDeps } from './registration.ts';
import { requestFacts, signInEvent } from '../audit/audit.ts';
import { maskEmails } from '../log.ts';
import { refuse, waitMessage } from '../http/too-many.ts';
import { interactionSteps, type Interaction } from './steps.ts';
import { countSignIn } from '../metrics/sign-ins.ts';

export type InteractionDeps = Omit<RegistrationDeps, 'steps'> &
  Pick<
    Services,
    | 'consents'
    | 'guard'
    | 'mfa'
    | 'passkeys'
    | 'checkPassword'
    | 'noticeSignIn'
    | 'factorChanged'
    | 'metrics'
  > & { provider: () => Provider };

// One message for unknown email, wrong password, locked and disabled (no enumeration).
const INCORRECT = 'The email or password is incorrect.';

// The login is an email, or a directory username.
const loginForm = z.object({ email: field.text(INCORRECT, EMAIL_MAX), password: field.secret() });

const DIRECTORY_DOWN =
  "Your organisation's directory cannot be reached right now, so directory accounts cannot sign in. Try again in a few minutes.";

/** The hosted pages oidc-provider sends the browser to: login, consent, and cancelling. */
export function interactionRouter(deps: InteractionDeps): Router {
  const { provider, consents, views, csrf, audit, guard } = deps;
  const router = new Router({ prefix: '/interaction/:uid' });

  const steps = interactionSteps(provider, csrf);
  const registration = addRegistration(router, { ...deps, steps });
  const mfaStep = addMfaStep(router, { ...deps, steps });
  const passkeyLogin = deps.mfa.enabled && deps.config.mfa.passkeyLogin;

  function loginPage(
    ctx: Context,
    interaction: Interaction,
    client: string,
    extra: { email?: string; error?: string; passkeyError?: string; status?: number } = {},
  ) {
    views.render(
      ctx,
      'login',
      {
        title: 'Sign in',
        uid: interaction.uid,
        csrf: csrf.token(csrfBindings.interaction(interaction.uid)),
        client,
        email: extra.email ?? interaction.params.login_hint ?? '',
        error: extra.error,
        passkeyError: extra.passkeyError,
        canRegister: deps.config.registration.enabled,
        // Directory users may sign in with their directory username.
        usernames: !!deps.config.ldap,
        passkeyLogin,
        passkeyScripts: passkeyLogin,
      },
      extra.status ?? (extra.error || extra.passkeyError ? 400 : 200),
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
    const form = await steps.readForm(ctx, loginForm);
    const interaction = await steps.require(ctx);
    if (interaction.prompt.name !== 'login')
      throw new HttpError(400, 'This step is already complete.');
    const client = () => steps.clientName(interaction.params.client_id);
    if (!form.ok)
      return loginPage(ctx, interaction, await client(), {
        email: form.input.email,
        error: form.problems[0],
      });
    const { email, password } = form.fields;
    const clientId = String(interaction.params.client_id);
    const facts = requestFacts(ctx);
    // A directory user's password is the directory's: its sign-ins are counted apart.
    const method = (user?: User) => (user?.source === 'ldap' ? 'directory' : 'password');
    const failure = (reason: string, user?: User) => {
      countSignIn(deps.metrics, method(user), reason);
      return audit(
        // An unknown login is kept only masked, and only when shaped like an address: it may be
        // a password typed in the wrong field.
        signInEvent('failure', user?.id, {
          reason,
          client: clientId,
          ...(!user && isEmailAddress(email) && { email: maskEmails(email) }),
        }),
        facts,
      );
    };

    // The sign-in counts from before the password hash is read: a sign-out everywhere that
    // lands while it is checked leaves the session it makes standing for no time at all.
    const checkedAt = Math.floor(Date.now() / 1000);
    const account = { user: email ? await deps.checkPassword.accountOf(email) : undefined };
    // A locked account answers like a wrong password, after the same work.
    const outcome = await guard.attempt(ctx, { user: account.user, login: email }, () =>
      deps.checkPassword(email, password, account),
    );
    if (outcome.status === 'refused') {
      await failure('rate_limited', account.user);
      refuse(ctx, outcome.retryAfterSeconds);
      return loginPage(ctx, interaction, await client(), {
        email,
        error: waitMessage(outcome.retryAfterSeconds),
        status: 429,
      });
    }
    const checked = outcome.result;
    if (outcome.status !== 'ok' || !checked.ok) {
      const reason = outcome.status === 'locked' || checked.ok ? 'locked' : checked.reason;
      await failure(reason, checked.user ?? account.user);
      const outage = reason === 'directory_unavailable';
      return loginPage(ctx, interaction, await client(), {
        email,
        error: outage ? DIRECTORY_DOWN : INCORRECT,
        ...(outage && { status: 503 }),
      });
    }
    const { user } = checked;
    if (await registration.stopUnverified(ctx, interaction, user))
      return failure('email_not_verified', user);
    // The sign-in is complete here unless a second factor follows; then it is complete (its
    // failures cleared, this browser known to the account) after that factor, or a known
    // password would clear the count between guesses at the code.
    const mfaNeeded = await deps.mfa.needed(user.id, interaction.params.acr_values);
    if (!mfaNeeded) await guard.completed(ctx, user, outcome.clean);
    countSignIn(deps.metrics, method(user), mfaNeeded ? 'mfa_required' : 'success');
    await audit(signInEvent('success', user.id, { method: 'password', client: clientId }), facts);
    deps.noticeSignIn(user, facts);
    await steps.signedIn(ctx, interaction, user.id, checkedAt);
  });

  router.post('/consent', async (ctx) => {
    await steps.readForm(ctx, noFields);
    const interaction = await steps.require(ctx);
    if (interaction.prompt.name !== 'consent')
      throw new HttpError(400, 'This step is already complete.');
    const grantId = await grantConsent(
      provider(),
      { db: deps.db, consents, audit },
      interaction,
      requestFacts(ctx),
    );
    await steps.finish(ctx, interaction, { consent: { grantId } }, true);
  });

  router.post('/abort', async (ctx) => {
    await steps.readForm(ctx, noFields);
    const interaction = await steps.require(ctx);
    await steps.finish(ctx, interaction, {
      error: 'access_denied',
      error_description: 'The user declined the request.',
    });
  });

  if (passkeyLogin)
    addPasskeyLogin(router, {
      ...deps,
      steps,
      stopUnverified: registration.stopUnverified,
      async loginPage(ctx, interaction, error, status) {
        const client = await steps.clientName(interaction.params.client_id);
        loginPage(ctx, interaction, client, { passkeyError: error, ...(status && { status }) });
      },
    });
  addPasswordReset(router, { ...deps, steps });
  return router;
}
