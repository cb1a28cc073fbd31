import type Router from '@koa/router';
import type { Context } from 'koa';
import type { User } from '../users/store.ts';
import { requestFacts, userEvent } from '../audit/audit.ts';
import { z } from 'zod';
import { csrfBindings } from '../http/csrf-bindings.ts';
import { field, noFields, readForm } from '../http/form.ts';
import type { Services } from '../services.ts';
import { HttpError } from '../http/http-error.ts';
import { totpEnrolmentPage } from '../http/totp-enrolment-page.ts';
import { mfaAttempts, type MfaMethod } from './mfa-attempts.ts';
import { addMfaPasskey } from './mfa-passkey.ts';
import type { Interaction, InteractionSteps } from './steps.ts';

export type MfaStepDeps = Pick<
  Services,
  'mfa' | 'passkeys' | 'users' | 'guard' | 'audit' | 'views' | 'csrf' | 'factorChanged' | 'metrics'
> & { steps: InteractionSteps };

const WRONG = {
  totp: 'That code is not right. Enter the current code from your authenticator app.',
  recovery: 'That recovery code is not right, or was already used.',
};

const codeForm = (wrong: string) => z.object({ code: field.code(wrong) });

/**
 * The `mfa` prompt: a code from the authenticator app, a passkey or a recovery code after the
 * password (or in a password-only session the app asked to step up); enrolment first where
 * policy requires a factor the user does not have yet.
 */
export function addMfaStep(router: Router, deps: MfaStepDeps) {
  const { mfa, users, audit, views, csrf, steps } = deps;
  const attempts = mfaAttempts(deps);

  const enrolPage = (ctx: Context, interaction: Interaction, user: User, error?: string) =>
    totpEnrolmentPage({ views, mfa }, ctx, user, `interaction:${interaction.uid}`, {
      action: `/interaction/${interaction.uid}/mfa/enrol`,
      csrf: csrf.token(csrfBindings.interaction(interaction.uid)),
      askPassword: false,
      error,
    });

  async function checkCode(ctx: Context, method: 'totp' | 'recovery') {
    const form = await steps.readForm(ctx, codeForm(WRONG[method]));
    const { interaction, user } = await attempts.pending(ctx);
    if (!form.ok) return attempts.methodPage(ctx, interaction, user, method, form.problems[0]);
    const { code } = form.fields;
    const outcome = await attempts.attempt(ctx, interaction, user, method, async () => ({
      ok:
        method === 'totp'
          ? await mfa.totp.verify(user.id, code)
          : await mfa.recovery.redeem(user.id, code),
    }));
    if (!outcome) return;
    if (outcome.status === 'failed') {
      await attempts.failed(ctx, user, `wrong_${method}`);
      return attempts.methodPage(ctx, interaction, user, method, WRONG[method]);
    }
    if (method === 'recovery')
      await audit(
        userEvent('recovery_code_used', user.id, { left: await mfa.recovery.remaining(user.id) }),
        requestFacts(ctx),
      );
    await attempts.succeeded(ctx, interaction, user, method, 'otp', outcome.clean);
  }

  router.post('/mfa/totp', (ctx) => checkCode(ctx, 'totp'));
  router.post('/mfa/recovery', (ctx) => checkCode(ctx, 'recovery'));
  addMfaPasskey(router, { passkeys: deps.passkeys, steps, attempts });

  router.post('/mfa/enrol', async (ctx) => {
    const form = await steps.readForm(ctx, codeForm(WRONG.totp));
    const { interaction, user } = await attempts.pending(ctx);
    // Enrolling here is for a user with no factor yet; one who has a factor must use it.
    const state = await mfa.state(user.id);
    if (state.totp || state.passkeys)
      throw new HttpError(400, 'Two-step verification is already set up for this account.');
    if (!form.ok) return enrolPage(ctx, interaction, user, form.problems[0]);
    if (!(await mfa.totp.confirm(user, `interaction:${interaction.uid}`, form.fields.code)))
      return enrolPage(ctx, interaction, user, WRONG.totp);
    await audit(userEvent('mfa_enrolled', user.id, { factor: 'totp' }), requestFacts(ctx));
    deps.factorChanged(user, 'totp_added');
    views.render(ctx, 'recovery-codes', {
      title: 'Save your recovery codes',
      codes: await mfa.recovery.regenerate(user.id),
      action: `/interaction/${interaction.uid}/mfa/continue`,
      csrf: csrf.token(csrfBindings.mfaContinue(interaction.uid)),
    });
  });

  // Only the browser that has just confirmed a first code was given this form's token.
  router.post('/mfa/continue', async (ctx) => {
    const { interaction, user } = await attempts.pending(ctx);
    const binding = csrfBindings.mfaContinue(interaction.uid);
    await readForm(ctx, noFields, { csrf, binding });
    if (!(await mfa.totp.enrolled(user.id))) throw new HttpError(403, binding.expired);
    await attempts.finish(ctx, interaction, user, 'otp');
  });

  return {
    /** The page of the `mfa` prompt for this interaction: the user's default method first. */
    async page(ctx: Context, interaction: Interaction) {
      const user = await users.findById(String(interaction.session?.accountId));
      if (!user) throw new HttpError(400, 'This sign-in cannot continue.');
      const state = await mfa.state(user.id);
      if (!state.totp && !state.passkeys) return enrolPage(ctx, interaction, user);
      const asked = ctx.query.method;
      // A passkey when asked for, or when it is all the user has besides recovery codes.
      const method: MfaMethod =
        asked === 'recovery'
          ? 'recovery'
          : state.passkeys && (asked === 'passkey' || !state.totp)
            ? 'passkey'
            : 'totp';
      await attempts.methodPage(ctx, interaction, user, method);
    },
  };
}
