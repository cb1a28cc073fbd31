import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { Audit, RequestFacts } from '../audit/audit.ts';
import type { Db } from '../db.ts';
import type { ConsentStore } from '../users/consents.ts';
import type { Csrf } from '../security/csrf.ts';
import type { Views } from '../views.ts';
import type { Interaction } from './steps.ts';
import { csrfBindings } from '../http/csrf-bindings.ts';
import { apiScopes, scopeWords } from './scope-words.ts';

type MissingInteraction = {
  missingOIDCScope?: string[];
  missingOIDCClaims?: string[];
  missingResourceScopes?: Record<string, string[]>;
};

export async function consentPage(
  ctx: Context,
  deps: { provider: Provider; views: Views; csrf: Csrf },
  interaction: Interaction,
  client: string,
) {
  const missing = interaction.prompt.details as MissingInteraction;
  const scopes = scopeWords(missing.missingOIDCScope ?? []);
  const apis = apiScopes(missing.missingResourceScopes ?? {});
  const existing = interaction.grantId
    ? await deps.provider.Grant.find(interaction.grantId)
    : undefined;
  const granted = scopeWords((existing?.getOIDCScope() ?? '').split(' ').filter(Boolean));
  deps.views.render(ctx, 'consent', {
    title: `Allow ${client}?`,
    uid: interaction.uid,
    csrf: deps.csrf.token(csrfBindings.interaction(interaction.uid)),
    client,
    scopes,
    apis,
    granted,
  });
}

/**
 * Records what the user just allowed on the (existing or new) grant; returns its id. The
 * remembered consent (which lets a later sign-in skip the question) and its audit row are one
 * transaction. The grant oidc-provider keeps is saved around it so that no failure leaves a
 * consent usable without its record: a new grant first, as nothing refers to it until this
 * interaction finishes with it; the browser's existing grant only after the commit, for it
 * would at once let this browser skip the question.
 */
export async function grantConsent(
  provider: Provider,
  { db, consents, audit }: { db: Db; consents: ConsentStore; audit: Audit },
  interaction: Interaction,
  facts: RequestFacts,
): Promise<string> {
  const { accountId } = interaction.session ?? {};
  if (!accountId) throw new Error('consent without a signed-in session');
  const existing = interaction.grantId && (await provider.Grant.find(interaction.grantId));
  const grant =
    existing || new provider.Grant({ accountId, clientId: String(interaction.params.client_id) });
  const missing = interaction.prompt.details as MissingInteraction;
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {}))
    grant.addResourceScope(indicator, scopes.join(' '));
  const grantId = existing ? existing.jti : await grant.save();
  const clientId = grant.clientId!;
  await db.transaction(async (trx) => {
    const consent = {
      scope: grant.getOIDCScope(),
      claims: grant.getOIDCClaims(),
      resources: { ...grant.resources },
    };
    await consents.remember(accountId, clientId, consent, trx);
    await audit.within(
      trx,
      {
        type: 'consent_granted',
        outcome: 'success',
        actor: { type: 'user', id: accountId },
        subject: accountId,
        detail: { client: clientId, grant: grantId },
      },
      facts,
    );
  });
  if (existing) await grant.save();
  return grantId;
}
