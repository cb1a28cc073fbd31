import type Router from '@koa/router';
import type { Context } from 'koa';
import { describeDevice } from '../accounts/devices.ts';
import type { User } from '../accounts/users.ts';
import { requestFacts, userEvent } from '../audit/audit.ts';
import type { Mfa } from '../mfa/mfa.ts';
import { PASSKEY_NAME_MAX, type Passkeys } from '../mfa/passkeys.ts';
import type { Views } from '../views.ts';
import type { AccountDeps } from './router.ts';

type Posted = { user: User; sessionId: string; form: Record<string, string> };

type Deps = AccountDeps & {
  mfa: Mfa;
  passkeys: Passkeys;
  views: Views;
  csrfToken: (sessionId: string) => string;
  posted: (ctx: Context) => Promise<Posted>;
  confirmed: (ctx: Context) => Promise<Posted & { passwordOk: boolean }>;
  overview: (ctx: Context, user: User, sessionId: string, error?: string) => Promise<void>;
  firstRecoveryCodes: (ctx: Context, user: User, sessionId: string) => Promise<boolean>;
};

const WRONG_PASSWORD = 'Your current password is not right.';
const NOT_ADDED = 'The passkey was not added: the request expired or was not answered. Try again.';

/**
 * Passkeys in the account. Adding one asks for the current password first; the registration
 * challenge is issued only then, so the browser's ceremony that follows is what the password
 * allowed. Renaming is harmless and asks only for the form token; removing asks the password.
 */
export function addPasskeySettings(router: Router, deps: Deps): void {
  const { mfa, passkeys, views, audit, posted, confirmed, overview } = deps;

  router.post('/mfa/passkeys/new', async (ctx) => {
    const { user, sessionId, passwordOk } = await confirmed(ctx);
    if (!passwordOk) return overview(ctx, user, sessionId, WRONG_PASSWORD);
    views.render(ctx, 'passkey-add', {
      title: 'Add a passkey',
      options: JSON.stringify(await passkeys.registrationOptions(user, sessionId)),
      name: describeDevice(ctx.get('user-agent'), ctx.ip).description,
      nameMax: PASSKEY_NAME_MAX,
      csrf: deps.csrfToken(sessionId),
      passkeyScripts: true,
    });
  });

  router.post('/mfa/passkeys', async (ctx) => {
    const { user, sessionId, form } = await posted(ctx);
    const name = form.name || describeDevice(ctx.get('user-agent'), ctx.ip).description;
    if (!(await passkeys.register(user.id, sessionId, form.credential, name)))
      return overview(ctx, user, sessionId, NOT_ADDED);
    await audit(userEvent('mfa_enrolled', user.id, { factor: 'passkey' }), requestFacts(ctx));
    if (!(await deps.firstRecoveryCodes(ctx, user, sessionId))) ctx.redirect('/account/mfa');
  });

  router.post('/mfa/passkeys/rename', async (ctx) => {
    const { user, sessionId, form } = await posted(ctx);
    if (!(await passkeys.rename(user.id, form.id ?? '', form.name ?? '')))
      return overview(ctx, user, sessionId, 'Give the passkey a name.');
    ctx.redirect('/account/mfa');
  });

  router.post('/mfa/passkeys/remove', async (ctx) => {
    const { user, sessionId, form, passwordOk } = await confirmed(ctx);
    if (!passwordOk) return overview(ctx, user, sessionId, WRONG_PASSWORD);
    if (await passkeys.remove(user.id, form.id ?? '')) {
      const state = await mfa.state(user.id);
      // Recovery codes stand in for a second factor: with none left they have nothing to recover.
      if (!state.totp && !state.passkeys) await mfa.recovery.clear(user.id);
      await audit(userEvent('mfa_removed', user.id, { factor: 'passkey' }), requestFacts(ctx));
    }
    ctx.redirect('/account/mfa');
  });
}
