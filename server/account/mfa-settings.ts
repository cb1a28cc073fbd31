import type Router from '@koa/router';
import type { Context } from 'koa';
import { isCurrentPassword } from '../accounts/password-check.ts';
import type { User } from '../accounts/users.ts';
import { requestFacts, userEvent } from '../audit/audit.ts';
import { HttpError, readForm } from '../http/form.ts';
import { totpEnrolmentPage, type Mfa } from '../mfa/mfa.ts';
import { addPasskeySettings } from './passkey-settings.ts';
import type { AccountDeps } from './router.ts';

type Deps = AccountDeps & {
  mfa: Mfa;
  signedIn: (ctx: Context) => Promise<{ user: User; sessionId: string }>;
};

const WRONG_PASSWORD = 'Your current password is not right.';
const WRONG_CODE = 'That code is not right. Enter the current code from your authenticator app.';

// Dates in the account pages: the day is enough to recognise a passkey.
const day = new Intl.DateTimeFormat('en-GB', { dateStyle: 'medium', timeZone: 'UTC' });

/**
 * Two-step verification in the account: set up the authenticator app, passkeys, new recovery
 * codes, turn a factor off. Each change asks for the current password: a borrowed session alone
 * must not be able to add a factor of its own or remove the owner's.
 */
export function addMfaSettings(router: Router, deps: Deps): void {
  const { mfa, passkeys, views, csrf, signedIn, audit, config } = deps;
  // MFA_POLICY=off: no settings pages at all (404), as no sign-in asks for a factor.
  if (!mfa.enabled) return;
  const formCsrf = (sessionId: string) => `mfa:${sessionId}`;

  async function overview(ctx: Context, user: User, sessionId: string, error?: string) {
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
        csrf: csrf.token(formCsrf(sessionId)),
        error,
      },
      error ? 400 : 200,
    );
  }

  const enrolPage = (ctx: Context, user: User, sessionId: string, error?: string) =>
    totpEnrolmentPage({ views, mfa }, ctx, user, {
      action: '/account/mfa/totp',
      csrf: csrf.token(formCsrf(sessionId)),
      askPassword: true,
      error,
    });

  function showCodes(ctx: Context, title: string, codes: string[], sessionId: string) {
    views.render(ctx, 'recovery-codes', {
      title,
      codes,
      action: '/account/mfa/done',
      csrf: csrf.token(formCsrf(sessionId)),
    });
  }

  /** The signed-in user and the posted form, once its token checks out. */
  async function posted(ctx: Context) {
    const { user, sessionId } = await signedIn(ctx);
    const form = await readForm(ctx);
    if (!csrf.verify(formCsrf(sessionId), form.csrf))
      throw new HttpError(403, 'The form expired. Reload the page and try again.');
    return { user, sessionId, form };
  }

  /** The same, and whether the current password in the form is right. */
  async function confirmed(ctx: Context) {
    const { user, sessionId, form } = await posted(ctx);
    const passwordOk = await isCurrentPassword(deps, user, form.password ?? '');
    return { user, sessionId, form, passwordOk };
  }

  /** Recovery codes for a user who has just added a first factor and has none left. */
  async function firstRecoveryCodes(ctx: Context, user: User, sessionId: string) {
    if (await mfa.recovery.remaining(user.id)) return false;
    showCodes(ctx, 'Save your recovery codes', await mfa.recovery.regenerate(user.id), sessionId);
    return true;
  }

  router.get('/mfa', async (ctx) => {
    const { user, sessionId } = await signedIn(ctx);
    await overview(ctx, user, sessionId);
  });

  router.get('/mfa/totp', async (ctx) => {
    const { user, sessionId } = await signedIn(ctx);
    if (await mfa.totp.enrolled(user.id)) return ctx.redirect('/account/mfa');
    await enrolPage(ctx, user, sessionId);
  });

  router.post('/mfa/totp', async (ctx) => {
    const { user, sessionId, form, passwordOk } = await confirmed(ctx);
    if (await mfa.totp.enrolled(user.id)) return ctx.redirect('/account/mfa');
    if (!passwordOk) return enrolPage(ctx, user, sessionId, WRONG_PASSWORD);
    if (!(await mfa.totp.confirm(user.id, form.code ?? '')))
      return enrolPage(ctx, user, sessionId, WRONG_CODE);
    await audit(userEvent('mfa_enrolled', user.id, { factor: 'totp' }), requestFacts(ctx));
    if (!(await firstRecoveryCodes(ctx, user, sessionId))) ctx.redirect('/account/mfa');
  });

  router.post('/mfa/recovery', async (ctx) => {
    const { user, sessionId, passwordOk } = await confirmed(ctx);
    if (!passwordOk) return overview(ctx, user, sessionId, WRONG_PASSWORD);
    const codes = await mfa.recovery.regenerate(user.id);
    await audit(userEvent('recovery_codes_regenerated', user.id), requestFacts(ctx));
    showCodes(ctx, 'Your new recovery codes', codes, sessionId);
  });

  router.post('/mfa/totp/remove', async (ctx) => {
    const { user, sessionId, passwordOk } = await confirmed(ctx);
    if (!passwordOk) return overview(ctx, user, sessionId, WRONG_PASSWORD);
    await mfa.totp.remove(user.id);
    if ((await mfa.state(user.id)).passkeys === 0) await mfa.recovery.clear(user.id);
    await audit(userEvent('mfa_removed', user.id, { factor: 'totp' }), requestFacts(ctx));
    ctx.redirect('/account/mfa');
  });

  addPasskeySettings(router, {
    ...deps,
    csrfToken: (sessionId) => csrf.token(formCsrf(sessionId)),
    posted,
    confirmed,
    overview,
    firstRecoveryCodes,
  });

  router.post('/mfa/done', async (ctx) => {
    ctx.status = 303;
    ctx.redirect('/account/mfa');
  });
}
