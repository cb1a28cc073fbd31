import type { Context } from 'koa';
import { z } from 'zod';
import { field } from '../http/form.ts';
import { isCurrentPassword, type CheckPassword } from '../users/password-check.ts';
import type { User } from '../users/store.ts';
import type { SignInGuard } from '../protection/sign-in-guard.ts';
import { refuse, waitMessage } from '../http/too-many.ts';
import type { PasswordHasher } from '../security/passwords.ts';

export const WRONG_PASSWORD = 'Your current password is not right.';

/** A form that asks for the current password; a page extends it with fields of its own. */
export const confirmedForm = z.object({ password: field.secret() });

export type CurrentPasswordVerdict = { ok: true } | { ok: false; error: string; status: number };

/**
 * The one check of the current password typed on an account page, for local and directory
 * users alike. Guesses count like wrong sign-ins (the same limits and lockout), so a borrowed
 * session cannot be used to guess the password.
 */
export function currentPasswordCheck(deps: {
  guard: SignInGuard;
  passwords: PasswordHasher;
  checkPassword: CheckPassword;
}) {
  return async (ctx: Context, user: User, password: string): Promise<CurrentPasswordVerdict> => {
    const outcome = await deps.guard.attempt(ctx, { user }, async () => ({
      ok: await isCurrentPassword(deps, user, password),
    }));
    if (outcome.status === 'refused') {
      refuse(ctx, outcome.retryAfterSeconds);
      return { ok: false, error: waitMessage(outcome.retryAfterSeconds), status: 429 };
    }
    // A locked account answers like a wrong password, as at sign-in.
    if (outcome.status === 'ok') return { ok: true };
    return { ok: false, error: WRONG_PASSWORD, status: 400 };
  };
}

export type CurrentPasswordCheck = ReturnType<typeof currentPasswordCheck>;
