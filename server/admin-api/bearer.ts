import { createLocalJWKSet, jwtVerify, type JWTPayload } from 'jose';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { AuditEvent } from '../audit/audit.ts';
import type { KeyManager } from '../keys/manager.ts';
import { ACR } from '../mfa/mfa.ts';
import { sessionStands } from '../users/session-rule.ts';
import type { Services } from '../services.ts';
import { ApiProblem } from './problems.ts';
import { ADMIN_ROLE, adminApiAudience, isAdminScope, type AdminScope } from './scopes.ts';

/** Who calls the admin API: a machine client, or a person through a client. */
export type ApiCaller =
  | { kind: 'client'; clientId: string; scopes: ReadonlySet<AdminScope> }
  | { kind: 'person'; userId: string; clientId: string; scopes: ReadonlySet<AdminScope> };

/** The facts of a token, whichever its format. */
type TokenFacts = {
  clientId: string;
  /** The person's id; absent for a client's own token (client_credentials). */
  accountId: string | undefined;
  scope: string;
  audience: string[];
  acr: unknown;
  /** When the person signed in (epoch seconds). */
  authTime: unknown;
  /** The grant of a person's opaque token: revoking it ends the token. */
  grantId: string | undefined;
  senderConstrained: boolean;
};

/** The audit actor of a caller: the client, or the person (with the client they used). */
export function actorOf(caller: ApiCaller): AuditEvent['actor'] {
  return caller.kind === 'client'
    ? { type: 'client', id: caller.clientId }
    : { type: 'admin', id: caller.userId };
}

/** Who a call's record names: the actor, and for a person the client they used. */
export type CallActor = { actor: AuditEvent['actor']; client?: string | undefined };

export const callActorOf = (caller: ApiCaller): CallActor => ({
  actor: actorOf(caller),
  client: caller.kind === 'person' ? caller.clientId : undefined,
});

type Deps = Pick<Services, 'config' | 'mfa'> & { provider: () => Provider; keys: KeyManager };

const REALM = 'Bearer realm="latchkey-admin"';
const invalid = (detail: string) =>
  new ApiProblem('invalid-token', detail, {
    headers: { 'WWW-Authenticate': `${REALM}, error="invalid_token"` },
  });

const asList = (aud: unknown): string[] =>
  Array.isArray(aud) ? aud.map(String) : typeof aud === 'string' ? [aud] : [];

/**
 * Checks the bearer access token of an admin API request (RFC 6750 §2.1, the header only), issued
 * by this server for the admin API's resource indicator, and says who calls with which scopes.
 * Opaque tokens are looked up in our own storage, JWTs verified with our own keys: no network
 * call. A token's scopes count only as far as its client is still allowed them, and a person's
 * only while they hold the admin role, are not disabled, and signed in with a second factor.
 * A JWT cannot be revoked before it expires, as no JWT access token can; an opaque one can.
 */
export function bearerVerifier({ config, mfa, provider, keys }: Deps) {
  const audience = adminApiAudience(config.issuer);
  let jwks: { fingerprint: string; set: ReturnType<typeof createLocalJWKSet> } | undefined;

  function keySet() {
    const view = keys.current();
    if (jwks?.fingerprint !== view.fingerprint) {
      // Only the public parts: verifying needs no private key.
      const publicKeys = view.jwks.map(
        ({ d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub }) => pub,
      );
      jwks = {
        fingerprint: view.fingerprint,
        set: createLocalJWKSet({ keys: publicKeys as never }),
      };
    }
    return jwks.set;
  }

  async function fromJwt(value: string): Promise<TokenFacts> {
    let claims: JWTPayload;
    try {
      ({ payload: claims } = await jwtVerify(value, keySet(), {
        issuer: config.issuer,
        audience,
        typ: 'at+jwt',
      }));
    } catch {
      throw invalid('The access token is not valid.');
    }
    const clientId = String(claims.client_id ?? '');
    return {
      clientId,
      accountId: claims.gty === 'client_credentials' ? undefined : claims.sub,
      scope: typeof claims.scope === 'string' ? claims.scope : '',
      audience: asList(claims.aud),
      acr: claims.acr,
      authTime: claims.auth_time,
      grantId: undefined,
      senderConstrained: claims.cnf !== undefined,
    };
  }

  async function fromOpaque(value: string): Promise<TokenFacts> {
    const { AccessToken, ClientCredentials } = provider();
    const [person, machine] = await Promise.all([
      AccessToken.find(value),
      ClientCredentials.find(value),
    ]);
    const token = person ?? machine;
    if (!token) throw invalid('The access token is not valid.');
    const extra = (token.extra ?? {}) as Record<string, unknown>;
    return {
      clientId: String(token.clientId),
      accountId: person?.accountId,
      scope: token.scope ?? '',
      audience: asList(token.aud),
      acr: extra.acr,
      authTime: extra.auth_time,
      grantId: person?.grantId,
      senderConstrained: token.isSenderConstrained(),
    };
  }

  return async function verify(ctx: Context): Promise<ApiCaller> {
    const [scheme, value, ...rest] = (ctx.get('authorization') || '').split(' ');
    if (!value || rest.length || scheme?.toLowerCase() !== 'bearer')
      throw new ApiProblem(
        'invalid-token',
        'Send an access token: Authorization: Bearer <token>.',
        {
          headers: { 'WWW-Authenticate': REALM },
        },
      );
    const facts = await (value.split('.').length === 3 ? fromJwt(value) : fromOpaque(value));
    // A token bound to a key (DPoP, mTLS) is only good with its proof, which this API does not take.
    if (!facts.audience.includes(audience) || facts.senderConstrained)
      throw invalid('The access token is not for this API.');
    const { Client, Grant } = provider();
    const client = (await Client.find(facts.clientId)) as { api_scopes?: string[] } | undefined;
    if (!client) throw invalid('The client of this access token no longer exists.');
    const allowed = new Set(client.api_scopes ?? []);
    const scopes = new Set(
      facts.scope.split(' ').filter((s): s is AdminScope => isAdminScope(s) && allowed.has(s)),
    );
    if (!facts.accountId) return { kind: 'client', clientId: facts.clientId, scopes };

    if (facts.grantId && !(await Grant.find(facts.grantId)))
      throw invalid('The access token was revoked.');
    // The user with their second factors, in one query: a token of a sign-in with a factor
    // the user has since lost (reset, removed) no longer counts as one.
    const found = await mfa.userWithState(facts.accountId);
    const user = found?.user;
    if (!user || user.disabled) throw invalid('The account of this access token cannot be used.');
    const hasFactor = found.state.totp || found.state.passkeys > 0;
    // A sign-in from before the account was last signed out everywhere (a password reset, a
    // factor reset) no longer counts, as its browser session no longer stands.
    if (!sessionStands(user, { loginTs: facts.authTime }))
      throw invalid('The sign-in of this access token was ended.');
    if (!user.roles.includes(ADMIN_ROLE) || facts.acr !== ACR.mfa || !hasFactor)
      throw new ApiProblem(
        'forbidden',
        'A person needs the admin role and a sign-in with a second factor to use this API.',
        { actor: { actor: { type: 'admin', id: user.id }, client: facts.clientId } },
      );
    return { kind: 'person', userId: user.id, clientId: facts.clientId, scopes };
  };
}

export type BearerVerifier = ReturnType<typeof bearerVerifier>;
