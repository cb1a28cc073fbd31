import type Provider from 'oidc-provider';
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
  const record = (event: AuditEvent, facts?: RequestFacts) =>
    audit(event, facts).catch(() => undefined);
  provider.on('grant.success', (ctx) => {
    const grantType = String(ctx.oidc.params?.grant_type);
    if (grantType !== 'authorization_code' && grantType !== 'refresh_token') return;
    const accountId = ctx.oidc.account?.accountId;
    const client = ctx.oidc.client?.clientId;
    void record(
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
    const client = ctx.oidc.client?.clientId;
    void record(
      {
        type: 'grant_revoked',
        outcome: 'success',
        actor: { type: 'client', id: client },
        detail: { grant: grantId, client },
      },
      requestFacts(ctx),
    );
  });
  provider.on('end_session.success', (ctx) => {
    const accountId = ctx.oidc.session?.accountId;
    void record(
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
