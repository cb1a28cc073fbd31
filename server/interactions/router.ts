import Router from '@koa/router';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { InteractionResults } from 'oidc-provider';
import type { ConsentStore } from '../accounts/consents.ts';
import type { UserStore } from '../accounts/users.ts';
import { readForm, HttpError } from '../http/form.ts';
import type { Csrf } from '../security/csrf.ts';
import type { Views } from '../views.ts';
import { consentPage, grantConsent } from './consent.ts';

export type InteractionDeps = {
  provider: () => Provider;
  users: UserStore;
  consents: ConsentStore;
  views: Views;
  csrf: Csrf;
};

type Details = Awaited<ReturnType<Provider['interactionDetails']>>;

/** The hosted pages oidc-provider sends the browser to: login, consent, and cancelling. */
export function interactionRouter(deps: InteractionDeps): Router {
  const { provider, users, consents, views, csrf } = deps;
  const router = new Router({ prefix: '/interaction/:uid' });

  async function details(ctx: Context): Promise<Details> {
    try {
      const found = await provider().interactionDetails(ctx.req, ctx.res);
      if (found.uid !== ctx.params.uid) throw new Error('uid mismatch');
      return found;
    } catch {
      throw new HttpError(
        400,
        'This sign-in request has expired or was already used. Go back to the application and try again.',
      );
    }
  }

  // A login starts the results afresh; later steps (consent) add to them, so that a request
  // asking for both (prompt=login consent) does not ask for the login again.
  async function finish(ctx: Context, result: InteractionResults, merge = false) {
    const redirectTo = await provider().interactionResult(ctx.req, ctx.res, result, {
      mergeWithLastSubmission: merge,
    });
    ctx.status = 303;
    ctx.redirect(redirectTo);
  }

  async function clientName(clientId: unknown) {
    const client = await provider().Client.find(String(clientId));
    return client?.clientName ?? String(clientId);
  }

  function loginPage(
    ctx: Context,
    interaction: Details,
    client: string,
    extra: { email?: string; error?: string } = {},
  ) {
    views.render(
      ctx,
      'login',
      {
        title: 'Sign in',
        uid: interaction.uid,
        csrf: csrf.token(interaction.uid),
        client,
        email: extra.email ?? interaction.params.login_hint ?? '',
        error: extra.error,
      },
      extra.error ? 400 : 200,
    );
  }

  router.get('/', async (ctx) => {
    const interaction = await details(ctx);
    const client = await clientName(interaction.params.client_id);
    if (interaction.prompt.name === 'login') return loginPage(ctx, interaction, client);
    if (interaction.prompt.name === 'consent')
      return consentPage(ctx, { provider: provider(), views, csrf }, interaction, client);
    throw new HttpError(400, `Unsupported step: ${interaction.prompt.name}`);
  });

  router.post('/login', async (ctx) => {
    const interaction = await details(ctx);
    const form = await readForm(ctx);
    if (!csrf.verify(interaction.uid, form.csrf))
      throw new HttpError(403, 'The form expired. Reload the page and try again.');
    if (interaction.prompt.name !== 'login')
      throw new HttpError(400, 'This step is already complete.');
    const email = (form.email ?? '').trim();
    const user =
      email && form.password ? await users.authenticate(email, form.password) : undefined;
    if (!user) {
      const client = await clientName(interaction.params.client_id);
      // One message for unknown email, wrong password and disabled account (no enumeration).
      return loginPage(ctx, interaction, client, {
        email,
        error: 'The email or password is incorrect.',
      });
    }
    await finish(ctx, { login: { accountId: user.id, amr: ['pwd'], remember: true } });
  });

  router.post('/consent', async (ctx) => {
    const interaction = await details(ctx);
    const form = await readForm(ctx);
    if (!csrf.verify(interaction.uid, form.csrf))
      throw new HttpError(403, 'The form expired. Reload the page and try again.');
    if (interaction.prompt.name !== 'consent')
      throw new HttpError(400, 'This step is already complete.');
    const grantId = await grantConsent(provider(), consents, interaction);
    await finish(ctx, { consent: { grantId } }, true);
  });

  router.post('/abort', async (ctx) => {
    const interaction = await details(ctx);
    const form = await readForm(ctx);
    if (!csrf.verify(interaction.uid, form.csrf))
      throw new HttpError(403, 'The form expired. Reload the page and try again.');
    await finish(ctx, {
      error: 'access_denied',
      error_description: 'The user declined the request.',
    });
  });

  return router;
}
