import type Router from '@koa/router';
import type { Context } from 'koa';
import { requestFacts, userEvent } from '../audit/audit.ts';
import type { z } from 'zod';
import { csrfBindings } from '../http/csrf-bindings.ts';
import { field, readForm } from '../http/form.ts';
import type { Mfa } from '../mfa/mfa.ts';
import { totpEnrolmentPage } from '../http/totp-enrolment-page.ts';
import { addPasskeySettings } from './passkey-settings.ts';
import { confirmedForm } from './current-password.ts';
import { accountOf } from './access.ts';
import type { AccountDeps, AccountPages } from './router.ts';

type Deps = AccountDeps & AccountPages & { mfa: Mfa };

const WRONG_CODE = 'That code is not right. Enter the current code from your authenticator app.';

/** A page that shows a form's problem (the overview, the authenticator app's setup). */
const code = field.code(WRONG_CODE);

export type ProblemPage = (ctx: Context, error: string, status?: number) => Promise<void>;

// Dates in the account pages: the day is enough to recognise a passkey.
const day = new Intl.DateTimeFormat('en-GB', { dateStyle: 'medium', timeZone: 'UTC' });

/**
 * Two-step verification in the account: set up the authenticator app, passkeys, new recovery
 * codes, turn a factor off. Each change needs a recent full sign-in and the current password:
 * a borrowed session alone must not be able to add a factor of its own or remove the owner's.
 */
export function addMfaSettings(router: Router, deps: Deps): void {
  const { mfa, passkeys, views, csrf, audit, config, recent, complete } = deps;
  // MFA_POLICY=off: no settings pages at all (404), as no sign-in asks for a factor.
  if (!mfa.enabled) return;
  const formCsrf = (ctx: Context) => csrfBindings.mfaSettings(accountOf(ctx).sessionId);

  async function overview(ctx: Context, error?: string, status = 400) {
    const { user } = accountOf(ctx);
    views.render(
      ctx,
      'account-mfa',
      {
        title: 'Two-step verification',
        // For password managers: the account each current-password field belongs to.
        email: user.email,
        state: await mfa.state(user.id),
        passkeys: (await passkeys.list(user.id)).map((p) => ({
          ...p,
          created: day.format(p.createdAt),
          lastUsed: p.lastUsedAt && day.format(p.lastUsedAt),
        })),
        passkeyLogin: config.mfa.passkeyLogin,
        csrf: csrf.token(formCsrf(ctx)),
        error,
      },
      error ? status : 200,
    );
  }

  // The key shown is this session's own: another session setting up the app sees another.
  const enrolPage = (ctx: Context, error?: string, status = 400) => {
    const { user, sessionId } = accountOf(ctx);
    return totpEnrolmentPage({ views, mfa }, ctx, user, `session:${sessionId}`, {
      action: '/account/mfa/totp',
      csrf: csrf.token(formCsrf(ctx)),
      askPassword: true,
      error,
      status,
    });
  };

  function showCodes(ctx: Context, title: string, codes: string[]) {
    views.render(ctx, 'recovery-codes', {
      title,
      codes,
      action: '/account/mfa/done',
      csrf: csrf.token(formCsrf(ctx)),
    });
  }

  /** The posted form's fields; undefined when it has a problem, which `page` has shown. */
  async function posted<S extends z.ZodObject>(ctx: Context, schema: S, page: ProblemPage) {
    const form = await readForm(ctx, schema, { csrf, binding: formCsrf(ctx) });
    if (form.ok) return form.fields;
    await page(ctx, form.problems[0]!);
  }

  /** The same, once the current password typed in it is right (else `page` says it is not). */
  async function confirmed<S extends typeof confirmedForm>(
    ctx: Context,
    schema: S,
    page: ProblemPage,
  ) {
    const fields = await posted(ctx, schema, page);
    if (!fields) return undefined;
    const password = await deps.currentPassword(ctx, accountOf(ctx).user, fields.password);
    if (password.ok) return fields;
    await page(ctx, password.error, password.status);
  }

  /** Recovery codes for a user who has just added a first factor and has none left. */
  async function firstRecoveryCodes(ctx: Context) {
    const { user } = accountOf(ctx);
    if (await mfa.recovery.remaining(user.id)) return false;
    showCodes(ctx, 'Save your recovery codes', await mfa.recovery.regenerate(user.id));
    return true;
  }

  router.get('/mfa', recent, async (ctx) => overview(ctx));

  router.get('/mfa/totp', recent, async (ctx) => {
    if (await mfa.totp.enrolled(accountOf(ctx).user.id)) return ctx.redirect('/account/mfa');
    await enrolPage(ctx);
  });

  router.post('/mfa/totp', recent, async (ctx) => {
    const { user, sessionId } = accountOf(ctx);
    // Set up already: nothing to do here, whatever was posted.
    if (await mfa.totp.enrolled(user.id)) return ctx.redirect('/account/mfa');
    const fields = await confirmed(ctx, confirmedForm.extend({ code }), enrolPage);
    if (!fields) return;
    if (!(await mfa.totp.confirm(user, `session:${sessionId}`, fields.code)))
      return enrolPage(ctx, WRONG_CODE);
    await audit(userEvent('mfa_enrolled', user.id, { factor: 'totp' }), requestFacts(ctx));
    deps.factorChanged(user, 'totp_added');
    await deps.factorAdded(ctx, 'otp');
    if (!(await firstRecoveryCodes(ctx))) ctx.redirect('/account/mfa');
  });

  router.post('/mfa/recovery', recent, async (ctx) => {
    const { user } = accountOf(ctx);
    if (!(await confirmed(ctx, confirmedForm, overview))) return;
    const codes = await mfa.recovery.regenerate(user.id);
    await audit(userEvent('recovery_codes_regenerated', user.id), requestFacts(ctx));
    deps.factorChanged(user, 'recovery_codes_renewed');
    showCodes(ctx, 'Your new recovery codes', codes);
  });

  router.post('/mfa/totp/remove', recent, async (ctx) => {
    const { user } = accountOf(ctx);
    if (!(await confirmed(ctx, confirmedForm, overview))) return;
    await mfa.totp.remove(user.id);
    if ((await mfa.state(user.id)).passkeys === 0) await mfa.recovery.clear(user.id);
    await audit(userEvent('mfa_removed', user.id, { factor: 'totp' }), requestFacts(ctx));
    deps.factorChanged(user, 'totp_removed');
    ctx.redirect('/account/mfa');
  });

  addPasskeySettings(router, {
    ...deps,
    csrfToken: (ctx) => csrf.token(formCsrf(ctx)),
    posted,
    confirmed,
    overview,
    firstRecoveryCodes,
  });

  router.post('/mfa/done', complete, async (ctx) => {
    ctx.status = 303;
    ctx.redirect('/account/mfa');
  });
}
