import type Router from '@koa/router';
import { z } from 'zod';
import { field, noFields } from '../http/form.ts';
import { HttpError } from '../http/http-error.ts';
import type { Passkeys } from '../mfa/passkeys.ts';
import type { MfaAttempts } from './mfa-attempts.ts';
import type { InteractionSteps } from './steps.ts';

export const PASSKEY_REFUSED = {
  expired: 'The passkey request expired. Try again.',
  unknown_passkey: 'That passkey is not one of yours here. Try another, or another way.',
  wrong_passkey: 'That passkey could not be checked. Try again, or another way.',
} as const;

const passkeyForm = z.object({ credential: field.hidden() });

/**
 * A passkey as the second factor: the page's script fetches the options (JSON; the interaction's
 * CSRF token in the body), runs the browser's ceremony and posts the answer as a form.
 */
export function addMfaPasskey(
  router: Router,
  {
    passkeys,
    steps,
    attempts,
  }: { passkeys: Passkeys; steps: InteractionSteps; attempts: MfaAttempts },
) {
  router.post('/mfa/passkey/options', async (ctx) => {
    const { interaction, user } = await attempts.pending(ctx);
    await steps.readForm(ctx, interaction, noFields);
    const options = await passkeys.authenticationOptions(interaction.uid, user.id);
    if (!options) throw new HttpError(400, 'This account has no passkey. Try another way.');
    ctx.set('Cache-Control', 'no-store');
    ctx.body = options;
  });

  router.post('/mfa/passkey', async (ctx) => {
    const { interaction, user } = await attempts.pending(ctx);
    const form = await steps.readForm(ctx, interaction, passkeyForm);
    // Whatever it holds, the passkey check judges it.
    const { credential } = form.ok ? form.fields : form.input;
    const outcome = await attempts.attempt(ctx, interaction, user, 'passkey', async () => {
      const checked = await passkeys.authenticate(interaction.uid, credential, user.id);
      // A late answer proves nothing either way: recorded, not counted against the account.
      return { ...checked, uncounted: !checked.ok && checked.reason === 'expired' };
    });
    if (!outcome) return;
    const checked = outcome.result;
    if (!checked.ok) {
      await attempts.failed(ctx, user, checked.reason);
      const message = PASSKEY_REFUSED[checked.reason];
      return attempts.methodPage(ctx, interaction, user, 'passkey', message);
    }
    // Guarded by the failed branch: a passing check is an 'ok' outcome.
    const clean = outcome.status === 'ok' && outcome.clean;
    await attempts.succeeded(ctx, interaction, user, 'passkey', checked.factor, clean);
  });
}
