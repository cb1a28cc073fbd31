import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { describeDevice } from '../users/devices.ts';
import { requestFacts, userEvent } from '../audit/audit.ts';
import type { Mfa } from '../mfa/mfa.ts';
import { PASSKEY_NAME_MAX, type Passkeys } from '../mfa/passkeys.ts';
import { field, NAME_MAX } from '../http/form.ts';
import type { Views } from '../views.ts';
import { accountOf } from './access.ts';
import { confirmedForm } from './current-password.ts';
import type { ProblemPage } from './mfa-settings.ts';
import type { AccountDeps, AccountPages } from './router.ts';

type Deps = AccountDeps &
  AccountPages & {
    mfa: Mfa;
    passkeys: Passkeys;
    views: Views;
    csrfToken: (ctx: Context) => string;
    posted: <S extends z.ZodObject>(
      ctx: Context,
      schema: S,
      page: ProblemPage,
    ) => Promise<z.output<S> | undefined>;
    confirmed: <S extends typeof confirmedForm>(
      ctx: Context,
      schema: S,
      page: ProblemPage,
    ) => Promise<z.output<S> | undefined>;
    overview: (ctx: Context, error?: string, status?: number) => Promise<void>;
    firstRecoveryCodes: (ctx: Context) => Promise<boolean>;
  };

const NOT_ADDED = 'The passkey was not added: the request expired or was not answered. Try again.';
const NAME = 'Give the passkey a name.';
const name = field.text('Give the passkey a shorter name.', NAME_MAX);

const added = z.object({ name, credential: field.hidden() });
const renamed = z.object({ id: field.hidden(), name });

/**
 * Passkeys in the account. Adding one needs a recent full sign-in and the current password; the
 * registration challenge is issued only then, so the browser's ceremony that follows is what
 * they allowed. Renaming is harmless and asks only for the form token; removing asks the password.
 */
export function addPasskeySettings(router: Router, deps: Deps): void {
  const { mfa, passkeys, views, audit, posted, confirmed, overview, recent, complete } = deps;

  router.post('/mfa/passkeys/new', recent, async (ctx) => {
    const { user, sessionId } = accountOf(ctx);
    if (!(await confirmed(ctx, confirmedForm, overview))) return;
    views.render(ctx, 'passkey-add', {
      title: 'Add a passkey',
      options: JSON.stringify(await passkeys.registrationOptions(user, sessionId)),
      name: describeDevice(ctx.get('user-agent'), ctx.ip).description,
      nameMax: PASSKEY_NAME_MAX,
      csrf: deps.csrfToken(ctx),
      passkeyScripts: true,
    });
  });

  // The challenge answered here was issued only after a recent sign-in and the password.
  router.post('/mfa/passkeys', complete, async (ctx) => {
    const { user, sessionId } = accountOf(ctx);
    const form = await posted(ctx, added, overview);
    if (!form) return;
    const name = form.name || describeDevice(ctx.get('user-agent'), ctx.ip).description;
    const factor = await passkeys.register(user.id, sessionId, form.credential, name);
    if (!factor) return overview(ctx, NOT_ADDED);
    await audit(userEvent('mfa_enrolled', user.id, { factor: 'passkey' }), requestFacts(ctx));
    deps.factorChanged(user, 'passkey_added');
    await deps.factorAdded(ctx, factor);
    if (!(await deps.firstRecoveryCodes(ctx))) ctx.redirect('/account/mfa');
  });

  router.post('/mfa/passkeys/rename', complete, async (ctx) => {
    const form = await posted(ctx, renamed, overview);
    if (!form) return;
    if (!(await passkeys.rename(accountOf(ctx).user.id, form.id, form.name)))
      return overview(ctx, NAME);
    ctx.redirect('/account/mfa');
  });

  router.post('/mfa/passkeys/remove', recent, async (ctx) => {
    const { user } = accountOf(ctx);
    const form = await confirmed(ctx, confirmedForm.extend({ id: field.hidden() }), overview);
    if (!form) return;
    if (await passkeys.remove(user.id, form.id)) {
      const state = await mfa.state(user.id);
      // Recovery codes stand in for a second factor: with none left they have nothing to recover.
      if (!state.totp && !state.passkeys) await mfa.recovery.clear(user.id);
      await audit(userEvent('mfa_removed', user.id, { factor: 'passkey' }), requestFacts(ctx));
      deps.factorChanged(user, 'passkey_removed');
    }
    ctx.redirect('/account/mfa');
  });
}
