import type Router from '@koa/router';
import type { Context } from 'koa';
import type { User } from '../users/store.ts';
import { requestFacts, signInEvent } from '../audit/audit.ts';
import { z } from 'zod';
import { field } from '../http/form.ts';
import type { Services } from '../services.ts';
import { HttpError } from '../http/http-error.ts';
import { ACR } from '../mfa/mfa.ts';
import { isOwnerLocked } from '../protection/owner-lock.ts';
import { refuse, waitMessage } from '../http/too-many.ts';
import type { Interaction, InteractionSteps } from './steps.ts';
import { countSignIn } from '../metrics/sign-ins.ts';

export type PasskeyLoginDeps = Pick<
  Services,
  'passkeys' | 'users' | 'guard' | 'audit' | 'noticeSignIn' | 'metrics'
> & {
  steps: InteractionSteps;
  /** The login page again, with an error (the password form stays the other way in). */
  loginPage(ctx: Context, interaction: Interaction, error: string, status?: number): Promise<void>;
  /** An account that has not verified its email is stopped here, as after a password. */
  stopUnverified(ctx: Context, interaction: Interaction, user: User): Promise<boolean>;
};

// The browser's answer to the ceremony, as JSON (mfa/passkey-responses.ts reads it).
// A passkey's answer is good once: never offered back to be sent again.
const passkeyForm = z.object({ credential: field.secret() });

const REFUSED = 'That passkey could not sign you in. Try again, or use your email and password.';

/**
 * Passwordless sign-in (PASSKEY_LOGIN): any discoverable passkey of this site, with user
 * verification, finishes the login step alone. It is possession plus the device's PIN or
 * biometric, so the session counts as two-factor (amr hwk|swk + mfa, acr mfa).
 */
export function addPasskeyLogin(router: Router, deps: PasskeyLoginDeps) {
  const { passkeys, users, guard, audit, steps } = deps;

  async function loginStep(ctx: Context) {
    const form = await steps.readForm(ctx, passkeyForm);
    const interaction = await steps.require(ctx);
    if (interaction.prompt.name !== 'login')
      throw new HttpError(400, 'This step is already complete.');
    // Whatever it holds, the passkey check judges it.
    const { credential } = form.ok ? form.fields : form.input;
    return { interaction, credential };
  }

  router.post('/passkey/options', async (ctx) => {
    const { interaction } = await loginStep(ctx);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = await passkeys.authenticationOptions(interaction.uid);
  });

  router.post('/passkey', async (ctx) => {
    const { interaction, credential } = await loginStep(ctx);
    const client = String(interaction.params.client_id);
    const facts = requestFacts(ctx);
    const failure = (reason: string, user?: User) => {
      countSignIn(deps.metrics, 'passkey', reason);
      return audit(signInEvent('failure', user?.id, { reason, method: 'passkey', client }), facts);
    };

    // The sign-in counts from before the passkey is checked (see the password's POST /login).
    const checkedAt = Math.floor(Date.now() / 1000);
    // Whose passkey it is shows only once checked: the attempt counts for the IP alone.
    const outcome = await guard.attempt(ctx, {}, async () => {
      const checked = await passkeys.authenticate(interaction.uid, credential);
      const user = checked.ok ? await users.findById(checked.userId) : undefined;
      const reason = !checked.ok
        ? checked.reason
        : !user
          ? 'unknown_passkey'
          : user.disabled
            ? 'disabled'
            : 'locked';
      const ok = checked.ok && !!user && !user.disabled && !isOwnerLocked(user);
      return { ok, checked, user, reason, uncounted: reason === 'expired' };
    });
    if (outcome.status === 'refused') {
      await failure('rate_limited');
      refuse(ctx, outcome.retryAfterSeconds);
      return deps.loginPage(ctx, interaction, waitMessage(outcome.retryAfterSeconds), 429);
    }
    const { checked, user } = outcome.result;
    // A lock stops guessing; a passkey cannot be guessed, and a lock someone else's guesses set
    // must not keep the owner's passkey out (the sign-in clears it). The lock the owner set with
    // "this wasn't me" does: whoever took the account may have added this passkey.
    if (outcome.status !== 'ok' || !checked.ok || !user) {
      await failure(outcome.result.reason, user);
      return deps.loginPage(ctx, interaction, REFUSED);
    }
    await guard.completed(ctx, user);
    if (await deps.stopUnverified(ctx, interaction, user))
      return failure('email_not_verified', user);
    countSignIn(deps.metrics, 'passkey', 'success');
    await audit(signInEvent('success', user.id, { method: 'passkey', client }), facts);
    deps.noticeSignIn(user, facts);
    await steps.finish(ctx, interaction, {
      login: {
        accountId: user.id,
        amr: [checked.factor, 'mfa'],
        acr: ACR.mfa,
        remember: true,
        // When the passkey was checked, not when the browser follows the redirect.
        ts: checkedAt,
      },
    });
  });
}
