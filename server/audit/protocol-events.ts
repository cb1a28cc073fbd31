import type { KoaContextWithOIDC, default as Provider } from 'oidc-provider';
import type { Audit, AuditEvent, RequestFacts } from './audit.ts';
import { requestFacts } from './audit.ts';

/**
 * Grant-level protocol events into the audit trail: a grant's first tokens, each refresh, a
 * revoked grant and a logout. Client-credential tokens are not audited one by one: that hot
 * path writes nothing to PostgreSQL.
 */
export function auditProtocolEvents(provider: Provider, audit: Audit): void {
  // oidc-provider tells of these once its answer is decided, so they cannot fail the exchange:
  // a row that could not be written is logged by audit(), and left.
  const record = (event: AuditEvent, facts?: RequestFacts) => audit.soon(event, facts);
  provider.on('grant.success', (ctx) => {
    const grantType = String(ctx.oidc.params?.grant_type);
    if (grantType !== 'authorization_code' && grantType !== 'refresh_token') return;
    const accountId = ctx.oidc.account?.accountId;
    const client = ctx.oidc.client?.clientId;
    record(
      {
        type: grantType === 'refresh_token' ? 'token_refreshed' : 'token_issued',
        outcome: 'success',
        actor: { type: 'client', id: client },
        subject: accountId,
        detail: { client },
      },
      requestFacts(ctx),
    );
  });
  provider.on('grant.revoked', (ctx, grantId) => {
    const { accountId, client } = grantOwner(ctx, grantId);
    record(
      {
        type: 'grant_revoked',
        outcome: 'success',
        actor: { type: 'client', id: ctx.oidc.client?.clientId },
        subject: accountId,
        detail: { grant: grantId, client, cause: CAUSES[ctx.oidc.route] },
      },
      requestFacts(ctx),
    );
  });
  provider.on('end_session.success', (ctx) => {
    const accountId = ctx.oidc.session?.accountId;
    record(
      {
        type: 'sign_out',
        outcome: 'success',
        actor: { type: 'user', id: accountId },
        subject: accountId,
      },
      requestFacts(ctx),
    );
  });
}

/** Why oidc-provider revoked a grant, by the route that did: what the user's activity says. */
const CAUSES: Record<string, string> = {
  // RFC 7009: the app revoked its token, as an app does when the user signs out of it.
  revocation: 'app_revoked',
  end_session_confirm: 'sign_out',
  // A spent refresh token or code came back: theft, or a broken app (RFC 9700 §4.14.2).
  token: 'reused',
};

type Owned = { accountId?: unknown; clientId?: unknown; grantId?: unknown } | undefined;

/**
 * Whose grant was revoked, and which app's: the grant itself is gone by the time oidc-provider
 * tells, so it is read off what the request had loaded. At a sign-out that is the session's
 * list of apps (the app named in the request may be another); at the revocation and token
 * endpoints the token presented. Unknown when the request loaded neither (a spent code).
 */
function grantOwner(ctx: KoaContextWithOIDC, grantId: string) {
  const { session, entities } = ctx.oidc;
  const inSession = Object.entries(session?.authorizations ?? {}).find(
    ([, authorization]) => authorization.grantId === grantId,
  );
  if (inSession && session?.accountId)
    return { accountId: session.accountId, client: inSession[0] };
  const loaded = entities as Record<string, Owned>;
  const token = [loaded.RefreshToken, loaded.AccessToken, loaded.AuthorizationCode].find(
    (t) => t?.grantId === grantId,
  );
  const text = (value: unknown) => (typeof value === 'string' ? value : undefined);
  return {
    accountId: text(token?.accountId),
    client: text(token?.clientId) ?? ctx.oidc.client?.clientId,
  };
}
