import type { Context } from 'koa';
import type { User } from '../users/store.ts';
import { requestFacts, signInEvent } from '../audit/audit.ts';
import { csrfBindings } from '../http/csrf-bindings.ts';
import { HttpError } from '../http/http-error.ts';
import { ACR, withSecondFactor } from '../mfa/mfa.ts';
import { refuse, waitMessage } from '../http/too-many.ts';
import type { MfaStepDeps } from './mfa.ts';
import type { AttemptOutcome, Verified } from '../protection/sign-in-guard.ts';
import type { Interaction } from './steps.ts';
import { countSignIn } from '../metrics/sign-ins.ts';

// Shown only after the right password, so it tells an attacker nothing a guess did not.
const LOCKED =
  'Too many failed attempts: this account is locked for a while. The email we sent has a link to unlock it.';

export type MfaMethod = 'totp' | 'recovery' | 'passkey';
type Factor = Parameters<typeof withSecondFactor>[1];

/**
 * What every way through the `mfa` prompt shares: the pending step and its user, the page of a
 * method, the rate limits before a check, and what a failure and a success record.
 */
export function mfaAttempts(deps: MfaStepDeps) {
  const { mfa, users, guard, audit, views, csrf, steps, metrics } = deps;

  async function methodPage(
    ctx: Context,
    interaction: Interaction,
    user: User,
    method: MfaMethod,
    error?: string,
    status = 400,
  ) {
    const state = await mfa.state(user.id);
    views.render(
      ctx,
      'mfa',
      {
        title: 'Two-step verification',
        uid: interaction.uid,
        csrf: csrf.token(csrfBindings.interaction(interaction.uid)),
        method,
        hasTotp: state.totp,
        hasPasskeys: state.passkeys > 0,
        passkeyScripts: method === 'passkey',
        error,
      },
      error ? status : 200,
    );
  }

  return {
    methodPage,

    async pending(ctx: Context): Promise<{ interaction: Interaction; user: User }> {
      const interaction = await steps.require(ctx);
      if (interaction.prompt.name !== 'mfa')
        throw new HttpError(400, 'This step is already complete.');
      const user = await users.findById(String(interaction.session?.accountId));
      if (!user || user.disabled) throw new HttpError(400, 'This sign-in cannot continue.');
      return { interaction, user };
    },

    /**
     * One guess at a second factor, through the sign-in guard: the same limits and lockout as
     * passwords. A refusal or a lock is answered here (undefined); a failure or a success is
     * the caller's to answer. A locked account takes no guesses: the code is not even checked
     * (nor a recovery code spent).
     */
    async attempt<T extends Verified>(
      ctx: Context,
      interaction: Interaction,
      user: User,
      method: MfaMethod,
      verify: () => Promise<T>,
    ): Promise<Extract<AttemptOutcome<T>, { status: 'ok' | 'failed' }> | undefined> {
      // Only the right password gets here: a wrong code counts toward the lock from any browser
      // (the owner is told), yet a lock others' guesses set does not hold the owner's browser.
      const outcome = await guard.attempt(ctx, { user, countDeviceFailures: true }, ({ locked }) =>
        locked ? Promise.resolve({ ok: false } as T) : verify(),
      );
      if (outcome.status === 'refused') {
        await this.failed(ctx, user, 'rate_limited');
        refuse(ctx, outcome.retryAfterSeconds);
        const message = waitMessage(outcome.retryAfterSeconds);
        await methodPage(ctx, interaction, user, method, message, 429);
        return undefined;
      }
      if (outcome.status === 'locked') {
        await this.failed(ctx, user, 'locked');
        await methodPage(ctx, interaction, user, method, LOCKED);
        return undefined;
      }
      return outcome as Extract<AttemptOutcome<T>, { status: 'ok' | 'failed' }>;
    },

    /** Records a failed second factor (the guard has counted it). */
    async failed(ctx: Context, user: User, reason: string) {
      countSignIn(metrics, 'second_factor', reason);
      await audit(signInEvent('failure', user.id, { reason }), requestFacts(ctx));
    },

    /** The second factor checked out: recorded, the account's failures cleared, step done. */
    async succeeded(
      ctx: Context,
      interaction: Interaction,
      user: User,
      method: MfaMethod,
      factor: Factor,
      clean: boolean,
    ) {
      countSignIn(metrics, 'second_factor', 'success');
      await audit(signInEvent('success', user.id, { method }), requestFacts(ctx));
      await guard.completed(ctx, user, clean);
      await this.finish(ctx, interaction, user, factor);
    },

    /**
     * Completes the sign-in with the second factor: amr gains it, acr says MFA. The sign-in
     * counts from when the password was checked (the step before), or now in a step-up.
     */
    finish(ctx: Context, interaction: Interaction, user: User, factor: Factor) {
      const passwordAt = (interaction.lastSubmission?.login as { ts?: number } | undefined)?.ts;
      return steps.finish(ctx, interaction, {
        login: {
          accountId: user.id,
          amr: withSecondFactor(interaction.session?.amr as string[] | undefined, factor),
          acr: ACR.mfa,
          remember: true,
          ts: passwordAt ?? Math.floor(Date.now() / 1000),
        },
      });
    },
  };
}

export type MfaAttempts = ReturnType<typeof mfaAttempts>;
