import type { Context } from 'koa';
import { errors, type default as Provider } from 'oidc-provider';
import type { InteractionResults } from 'oidc-provider';
import type { z } from 'zod';
import { csrfBindings } from '../http/csrf-bindings.ts';
import { readForm } from '../http/form.ts';
import { HttpError } from '../http/http-error.ts';
import { ACR } from '../mfa/mfa.ts';
import type { Csrf } from '../security/csrf.ts';

export type Interaction = Awaited<ReturnType<Provider['interactionDetails']>>;

const EXPIRED =
  'This sign-in request has expired or was already used. Go back to the application and try again.';

/** What every interaction page does: find the interaction, read its forms, finish a step. */
export function interactionSteps(provider: () => Provider, csrf: Csrf) {
  /** The interaction of this browser named by the URL, or undefined when gone or not this browser's. */
  async function find(ctx: Context): Promise<Interaction | undefined> {
    try {
      const found = await provider().interactionDetails(ctx.req, ctx.res);
      return found.uid === ctx.params.uid ? found : undefined;
    } catch (err) {
      // No interaction cookie, or it expired: the user's case. Anything else (storage down) is ours.
      if (err instanceof errors.SessionNotFound) return undefined;
      throw err;
    }
  }

  return {
    find,

    async require(ctx: Context): Promise<Interaction> {
      const found = await find(ctx);
      if (!found) throw new HttpError(400, EXPIRED);
      return found;
    },

    /** A form of this interaction's pages (server/http/form.ts), its CSRF token bound to it. */
    readForm<S extends z.ZodObject>(ctx: Context, interaction: Interaction, schema: S) {
      return readForm(ctx, schema, { csrf, binding: csrfBindings.interaction(interaction.uid) });
    },

    // A login starts the results afresh; later steps (consent) add to them, so that a request
    // asking for both (prompt=login consent) does not ask for the login again. This is
    // oidc-provider's interactionResult on the interaction the request already loaded, which
    // spares reading it (and its session) from storage a second time.
    async finish(
      ctx: Context,
      interaction: Interaction,
      result: InteractionResults,
      merge = false,
    ) {
      interaction.result =
        merge && !('error' in result) ? { ...interaction.lastSubmission, ...result } : result;
      await interaction.save(interaction.exp - Math.floor(Date.now() / 1000));
      ctx.status = 303;
      ctx.redirect(interaction.returnTo);
    },

    /**
     * Finishes the login step for a user who proved their password (or an emailed link) at `ts`
     * (epoch seconds, now by default). The time is fixed here, not when the browser follows the
     * redirect: a finished step kept unfollowed must not sign in after a sign-out everywhere.
     */
    signedIn(
      ctx: Context,
      interaction: Interaction,
      accountId: string,
      ts = Math.floor(Date.now() / 1000),
    ) {
      return this.finish(ctx, interaction, {
        login: { accountId, amr: ['pwd'], acr: ACR.password, remember: true, ts },
      });
    },

    async clientName(clientId: unknown): Promise<string> {
      const client = await provider().Client.find(String(clientId));
      return client?.clientName ?? String(clientId);
    },
  };
}

export type InteractionSteps = ReturnType<typeof interactionSteps>;
