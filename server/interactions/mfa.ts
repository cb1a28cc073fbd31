import type Router from '@koa/router';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { User, UserStore } from '../accounts/users.ts';
import { requestFacts, type Audit } from '../audit/audit.ts';
import { HttpError, readForm } from '../http/form.ts';
import { ACR, totpEnrolmentPage, withSecondFactor, type Mfa } from '../mfa/mfa.ts';
import type { SignInGuard } from '../protection/sign-in-guard.ts';
import { refuse, waitMessage } from '../protection/too-many.ts';
import type { Csrf } from '../security/csrf.ts';
import type { Views } from '../views.ts';
import type { Interaction, InteractionSteps } from './steps.ts';

export type MfaStepDeps = {
  mfa: Mfa;
  users: UserStore;
  guard: SignInGuard;
  audit: Audit;
  views: Views;
  csrf: Csrf;
  steps: InteractionSteps;
  provider: () => Provider;
};

type Method = 'totp' | 'recovery';
const WRONG: Record<Method, string> = {
  totp: 'That code is not right. Enter the current code from your authenticator app.',
  recovery: 'That recovery code is not right, or was already used.',
};

/**
 * The `mfa` prompt: a code from the authenticator app or a recovery code after the password
 * (or in a password-only session the app asked to step up); enrolment first where policy
 * requires a factor the user does not have yet.
 */
export function addMfaStep(router: Router, deps: MfaStepDeps) {
  const { mfa, users, guard, audit, views, csrf, steps } = deps;
  const continueCsrf = (uid: string) => `mfa-enrolled:${uid}`;

  async function pending(ctx: Context): Promise<{ interaction: Interaction; user: User }> {
    const interaction = await steps.require(ctx);
    if (interaction.prompt.name !== 'mfa')
      throw new HttpError(400, 'This step is already complete.');
    const user = await users.findById(String(interaction.session?.accountId));
    if (!user || user.disabled) throw new HttpError(400, 'This sign-in cannot continue.');
    return { interaction, user };
  }

  function codePage(
    ctx: Context,
    interaction: Interaction,
    method: Method,
    error?: string,
    status = 400,
  ) {
    views.render(
      ctx,
      'mfa',
      {
        title: 'Two-step verification',
        uid: interaction.uid,
        csrf: csrf.token(interaction.uid),
        method,
        error,
      },
      error ? status : 200,
    );
  }

  const enrolPage = (ctx: Context, interaction: Interaction, user: User, error?: string) =>
    totpEnrolmentPage({ views, mfa }, ctx, user, {
      action: `/interaction/${interaction.uid}/mfa/enrol`,
      csrf: csrf.token(interaction.uid),
      askPassword: false,
      error,
    });

  /** Completes the sign-in with the second factor: amr gains it, acr says MFA. */
  function finish(ctx: Context, interaction: Interaction, user: User) {
    return steps.finish(ctx, {
      login: {
        accountId: user.id,
        amr: withSecondFactor(interaction.session?.amr as string[] | undefined, 'otp'),
        acr: ACR.mfa,
        remember: true,
      },
    });
  }

  async function checkCode(ctx: Context, method: Method) {
    const { interaction, user } = await pending(ctx);
    const form = await steps.readForm(ctx, interaction);
    const limited = await guard.before(ctx.ip, user.email);
    if (!limited.ok) {
      refuse(ctx, limited.retryAfterSeconds);
      return codePage(ctx, interaction, method, waitMessage(limited.retryAfterSeconds), 429);
    }
    const code = form.code ?? '';
    const ok =
      method === 'totp'
        ? await mfa.totp.verify(user.id, code)
        : await mfa.recovery.redeem(user.id, code);
    const event = { actor: { type: 'user' as const, id: user.id }, subject: user.id };
    if (!ok) {
      await audit(
        { ...event, type: 'sign_in', outcome: 'failure', detail: { reason: `wrong_${method}` } },
        requestFacts(ctx),
      );
      // Wrong codes count like wrong passwords: same limits, same lockout.
      await guard.failed(ctx.ip, user.email, user, requestFacts(ctx));
      return codePage(ctx, interaction, method, WRONG[method]);
    }
    if (method === 'recovery')
      await audit(
        {
          ...event,
          type: 'recovery_code_used',
          outcome: 'success',
          detail: { left: await mfa.recovery.remaining(user.id) },
        },
        requestFacts(ctx),
      );
    await audit(
      { ...event, type: 'sign_in', outcome: 'success', detail: { method } },
      requestFacts(ctx),
    );
    await guard.succeeded(user.email, user);
    await finish(ctx, interaction, user);
  }

  router.post('/mfa/totp', (ctx) => checkCode(ctx, 'totp'));
  router.post('/mfa/recovery', (ctx) => checkCode(ctx, 'recovery'));

  router.post('/mfa/enrol', async (ctx) => {
    const { interaction, user } = await pending(ctx);
    const form = await steps.readForm(ctx, interaction);
    if (!(await mfa.totp.confirm(user.id, form.code ?? '')))
      return enrolPage(ctx, interaction, user, WRONG.totp);
    await audit(
      {
        type: 'mfa_enrolled',
        outcome: 'success',
        actor: { type: 'user', id: user.id },
        subject: user.id,
        detail: { factor: 'totp' },
      },
      requestFacts(ctx),
    );
    views.render(ctx, 'recovery-codes', {
      title: 'Save your recovery codes',
      codes: await mfa.recovery.regenerate(user.id),
      action: `/interaction/${interaction.uid}/mfa/continue`,
      csrf: csrf.token(continueCsrf(interaction.uid)),
    });
  });

  // Only the browser that has just confirmed a first code was given this form's token.
  router.post('/mfa/continue', async (ctx) => {
    const { interaction, user } = await pending(ctx);
    const form = await readForm(ctx);
    if (
      !csrf.verify(continueCsrf(interaction.uid), form.csrf) ||
      !(await mfa.totp.enrolled(user.id))
    )
      throw new HttpError(403, 'The form expired. Go back to the application and sign in again.');
    await finish(ctx, interaction, user);
  });

  return {
    /** The page of the `mfa` prompt for this interaction. */
    async page(ctx: Context, interaction: Interaction) {
      const user = await users.findById(String(interaction.session?.accountId));
      if (!user) throw new HttpError(400, 'This sign-in cannot continue.');
      const state = await mfa.state(user.id);
      if (!state.totp) return enrolPage(ctx, interaction, user);
      codePage(ctx, interaction, ctx.query.method === 'recovery' ? 'recovery' : 'totp');
    },
  };
}
