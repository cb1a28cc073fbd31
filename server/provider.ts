import Provider, {
  errors,
  interactionPolicy,
  type Configuration,
  type KoaContextWithOIDC,
} from 'oidc-provider';
import type { Config } from '../config/load.ts';
import { spendRotatedTokensOnSuccess } from '../adapters/refresh-rotation.ts';
import { OPAQUE_TOKEN_BITS, REFRESH_TOKEN_BITS } from '../adapters/index.ts';
import type { Services } from './services.ts';
import { providerOutagePages } from './http/errors.ts';
import { ACCOUNT_CLIENT_ID, accountClient } from './account-pages/access.ts';
import { auditProtocolEvents } from './audit/protocol-events.ts';
import { noteProviderRoute } from './metrics/http.ts';
import { countProtocolEvents } from './metrics/protocol.ts';
import { adminApiClaims } from './admin-api/token-claims.ts';
import { adminApiAudience, isAdminScope } from './admin-api/scopes.ts';
import { sessionStands } from './users/session-rule.ts';
import { keepSessionActivity, noteSessionActivity } from './users/session-activity.ts';
import { userClaims } from './users/store.ts';
import { acceptRotatedSecrets } from './clients/secret-check.ts';
import type { PrivateJwk } from './keys/store.ts';
import { ACR, type Mfa } from './mfa/mfa.ts';
import {
  answeringOutagesAsOAuth,
  isUnavailable,
  RETRY_AFTER_SECONDS,
} from '../adapters/outages.ts';

export type ProviderDeps = Pick<
  Services,
  | 'config'
  | 'adapter'
  | 'users'
  | 'consents'
  | 'views'
  | 'audit'
  | 'mfa'
  | 'log'
  | 'clients'
  | 'metrics'
>;

const AUTHORIZATION_ROUTES = new Set(['authorization', 'resume']);

export const SCOPES = ['openid', 'offline_access', 'profile', 'email', 'roles'];

/**
 * OIDC Core §5.4 scope → claims, plus our `roles`. With `openid` go the claims about the sign-in
 * itself (acr, amr), so every app learns how the user authenticated; the rest are oidc-provider's
 * defaults, which a claims setting replaces.
 */
const CLAIMS = {
  acr: null,
  auth_time: null,
  sid: null,
  iss: null,
  openid: ['sub', 'acr', 'amr'],
  profile: ['name', 'given_name', 'family_name', 'updated_at'],
  email: ['email', 'email_verified'],
  roles: ['roles'],
};

function resourceServerInfo(config: Config) {
  const adminApi = adminApiAudience(config.issuer);
  return async (_ctx: KoaContextWithOIDC, indicator: string, client: object) => {
    // The admin API gives each client only the scopes an admin allowed it (clients' api_scopes).
    if (indicator === adminApi) {
      const allowed = (client as { api_scopes?: string[] }).api_scopes ?? [];
      if (!allowed.length) throw new errors.InvalidTarget('this client may not use the admin API');
      return {
        audience: adminApi,
        scope: allowed.join(' '),
        accessTokenTTL: config.adminApi.accessTokenTTL,
        ...(config.adminApi.tokenFormat === 'jwt'
          ? { accessTokenFormat: 'jwt' as const, jwt: { sign: { alg: config.keys.alg } } }
          : { accessTokenFormat: 'opaque' as const }),
      };
    }
    const server = config.resourceServers.find((s) => s.audience === indicator);
    if (!server) throw new errors.InvalidTarget(`unknown resource ${indicator}`);
    return {
      audience: server.audience,
      scope: server.scopes,
      accessTokenTTL: server.accessTokenTTL ?? config.ttl.accessToken,
      ...(server.format === 'jwt'
        ? { accessTokenFormat: 'jwt' as const, jwt: { sign: { alg: config.keys.alg } } }
        : { accessTokenFormat: 'opaque' as const }),
    };
  };
}

/**
 * oidc-provider's login and consent prompts, with `mfa` between them: after the password (or in
 * a session that has only a password, when the app asks acr_values=urn:latchkey:acr:mfa).
 */
function interactionPolicyWithMfa(mfa: Mfa) {
  const { Prompt, Check, base } = interactionPolicy;
  const policy = base();
  // A session whose account findAccount no longer gives (disabled, locked by its owner, signed
  // out everywhere since) signs in again; with prompt=none that is login_required.
  policy
    .get('login')!
    .checks.add(
      new Check(
        'account_unavailable',
        'The account of this session cannot be used',
        'login_required',
        (ctx) =>
          ctx.oidc.session?.accountId && !ctx.oidc.account
            ? Check.REQUEST_PROMPT
            : Check.NO_NEED_TO_PROMPT,
      ),
    );
  policy.add(
    new Prompt(
      { name: 'mfa', requestable: false },
      new Check(
        'second_factor',
        'A second factor is required',
        answeringOutagesAsOAuth(async (ctx: KoaContextWithOIDC) =>
          (await mfa.secondFactorNeeded(ctx)) ? Check.REQUEST_PROMPT : Check.NO_NEED_TO_PROMPT,
        ),
      ),
    ),
    1,
  );
  return policy;
}

/** The oidc-provider instance for one set of signing keys; rebuilt when the key view changes. */
export function createProvider(
  { config, adapter, users, consents, views, log, audit, mfa, clients, metrics }: ProviderDeps,
  jwks: PrivateJwk[],
): Provider {
  const configuration: Configuration = {
    adapter: adapter as unknown as Configuration['adapter'],
    jwks: { keys: jwks as NonNullable<Configuration['jwks']>['keys'] },
    cookies: {
      keys: config.cookieKeys,
      long: { signed: true, httpOnly: true, sameSite: 'lax' },
      short: { signed: true, httpOnly: true, sameSite: 'lax' },
    },
    scopes: SCOPES,
    clients: [accountClient(config.issuer)],
    // Where a user manages their own account: account_management_uri as the Matrix spec's
    // MSC2965 reads it from OIDC discovery (and the Matrix Authentication Service publishes it);
    // authorization_management_uri, where they manage the apps they allowed, as the IETF draft
    // draft-emelia-oauth-authorization-management-uri-00 defines it for RFC 8414 metadata.
    discovery: {
      account_management_uri: `${config.issuer}/account`,
      authorization_management_uri: `${config.issuer}/account/apps`,
    },
    // Authorization code only: the implicit and hybrid flows are gone from OAuth 2.1.
    responseTypes: ['code'],
    claims: CLAIMS,
    // Claims of the granted scopes go in the ID token too, as most relying parties expect.
    conformIdTokenClaims: false,
    allowOmittingSingleRegisteredRedirectUri: false,
    clientDefaults: {
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: config.keys.alg,
    },
    enabledJWA: { idTokenSigningAlgValues: ['ES256', 'EdDSA', 'RS256'] },
    extraClientMetadata: {
      properties: ['allowed_cors_origins', 'pkce_required', 'api_scopes'],
      validator(_ctx, key, value, metadata) {
        if (value === undefined) return;
        if (
          key === 'api_scopes' &&
          (!Array.isArray(value) || value.some((s) => typeof s !== 'string' || !isAdminScope(s)))
        )
          throw new errors.InvalidClientMetadata('api_scopes must be a list of admin API scopes');
        if (
          key === 'allowed_cors_origins' &&
          (!Array.isArray(value) ||
            value.some((o) => typeof o !== 'string' || URL.parse(o)?.origin !== o))
        )
          throw new errors.InvalidClientMetadata('allowed_cors_origins must be a list of origins');
        if (key === 'pkce_required' && typeof value !== 'boolean')
          throw new errors.InvalidClientMetadata('pkce_required must be true or false');
        if (key === 'pkce_required' && !value && metadata.token_endpoint_auth_method === 'none')
          throw new errors.InvalidClientMetadata('a public client cannot opt out of PKCE');
      },
    },
    // RFC 9700 §2.1.1: PKCE for every client. An old confidential client that cannot send a
    // code_challenge may be registered with pkce_required: false; a public client never.
    pkce: {
      required: (_ctx, client) =>
        client.clientAuthMethod === 'none' ||
        (client as unknown as { pkce_required?: boolean }).pkce_required !== false,
    },
    // Per-client CORS: only the origins registered for the client (no implicit rule).
    clientBasedCORS(_ctx, origin, client) {
      const allowed = (client as unknown as { allowed_cors_origins?: string[] })
        .allowed_cors_origins;
      return Array.isArray(allowed) && allowed.includes(origin);
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      // RFC 7662 §4: a public client may introspect only its own tokens; a confidential one
      // (a resource server) any token presented to it.
      introspection: {
        enabled: true,
        allowedPolicy: async (ctx, client, token) =>
          client.clientAuthMethod !== 'none' || token.clientId === client.clientId,
      },
      // RFC 7009 §2.1: a client revokes only tokens issued to it.
      revocation: {
        enabled: true,
        allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId,
      },
      userinfo: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        async logoutSource(ctx, form) {
          views.render(ctx as never, 'logout', {
            title: 'Sign out',
            form,
            clientName: ctx.oidc.client?.clientName,
          });
        },
        async postLogoutSuccessSource(ctx) {
          views.render(ctx as never, 'logged-out', {
            title: 'Signed out',
            clientName: ctx.oidc.client?.clientName,
          });
        },
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => undefined as unknown as string,
        getResourceServerInfo: resourceServerInfo(config),
        useGrantedResource: async () => false,
      },
    },
    rotateRefreshToken: () => true,
    formats: {
      bitsOfOpaqueRandomness: (_ctx, token) =>
        token.kind === 'RefreshToken' ? REFRESH_TOKEN_BITS : OPAQUE_TOKEN_BITS,
    },
    ttl: {
      AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? config.ttl.accessToken,
      AuthorizationCode: config.ttl.authorizationCode,
      ClientCredentials: (_ctx, token) =>
        token.resourceServer?.accessTokenTTL ?? config.ttl.clientCredentials,
      IdToken: config.ttl.idToken,
      RefreshToken: config.ttl.refreshToken,
      // Called as the provider saves a session, the one moment it hands over the request too.
      // A signed-in session lasts SESSION_TTL from its sign-in, however active (an absolute
      // lifetime, as Keycloak's SSO Session Max): a copy of an ended session that a request in
      // flight writes back can then never outlive the note that it ended (session-rule.ts).
      Session: (ctx, session) => {
        noteSessionActivity(ctx as never, session);
        const signedIn = typeof session.loginTs === 'number' ? session.loginTs : undefined;
        if (signedIn === undefined) return config.ttl.session;
        return Math.max(1, signedIn + config.ttl.session - Math.floor(Date.now() / 1000));
      },
      Interaction: config.ttl.interaction,
      Grant: config.ttl.grant,
    },
    // The session's grant (oidc-provider's default); in a new session, a grant of its own built
    // from the consent this user gave the client before.
    loadExistingGrant: answeringOutagesAsOAuth(async (ctx: KoaContextWithOIDC) => {
      const { client, session, result, provider } = ctx.oidc;
      const accountId = session?.accountId;
      if (!client || !accountId) return undefined;
      const grantId = result?.consent?.grantId || session.grantIdFor(client.clientId);
      const current = grantId ? await provider.Grant.find(grantId) : undefined;
      if (current?.accountId === accountId && current.clientId === client.clientId) return current;
      if (client.clientId === ACCOUNT_CLIENT_ID) {
        // The account pages are ours: signing in to them asks no consent.
        const grant = new provider.Grant({ accountId, clientId: client.clientId });
        grant.addOIDCScope('openid');
        await grant.save();
        return grant;
      }
      const consent = await consents.find(accountId, client.clientId);
      if (!consent) return undefined;
      const grant = new provider.Grant({ accountId, clientId: client.clientId });
      if (consent.scope) grant.addOIDCScope(consent.scope);
      if (consent.claims.length) grant.addOIDCClaims(consent.claims);
      for (const [indicator, scope] of Object.entries(consent.resources))
        grant.addResourceScope(indicator, scope);
      await grant.save();
      return grant;
    }),
    interactions: {
      url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
      policy: interactionPolicyWithMfa(mfa),
    },
    acrValues: [ACR.password, ACR.mfa],
    findAccount: answeringOutagesAsOAuth(async (ctx: KoaContextWithOIDC, sub: string) => {
      // At the authorization endpoint the `mfa` prompt asks next for the user's second factors:
      // read them with the user.
      const found =
        mfa.enabled && AUTHORIZATION_ROUTES.has(ctx?.oidc?.route)
          ? await mfa.userWithState(sub)
          : { user: await users.findById(sub), state: undefined };
      const user = found?.user;
      // At the authorization endpoint the session must still stand for its account; elsewhere
      // (tokens, userinfo) the account must not be disabled or locked by its owner.
      const session = ctx?.oidc?.session;
      const standing = session?.accountId === sub ? session : { loginTs: Infinity };
      if (!user || !sessionStands(user, standing)) return undefined;
      return {
        accountId: user.id,
        roles: user.roles,
        mfa: found.state,
        claims: async () => userClaims(user),
      };
    }),
    // Gateways verifying JWT access tokens locally get the user's roles with them, when the
    // `roles` scope was granted. The token endpoint has just loaded the account through
    // findAccount: reuse it rather than read again.
    extraTokenClaims: answeringOutagesAsOAuth(async (ctx: KoaContextWithOIDC, token) => {
      // The admin API asks how a person signed in (it wants a second factor), and tells a
      // client's own token from a person's in a JWT, where both have a `sub`.
      const admin = adminApiClaims(ctx, token, config.issuer);
      if (admin) return admin;
      if (token.kind !== 'AccessToken' || !token.accountId) return undefined;
      // An API's token carries only the API's scopes: the code or refresh token it comes from
      // says whether this authorization included `roles`.
      const entities = ctx?.oidc?.entities as
        Record<string, { scopes?: Set<string> } | undefined> | undefined;
      const source = entities?.AuthorizationCode ?? entities?.RefreshToken;
      if (!token.scopes.has('roles') && !source?.scopes?.has('roles')) return undefined;
      const loaded = ctx?.oidc?.account as { accountId: string; roles?: string[] } | undefined;
      if (loaded?.accountId === token.accountId && loaded.roles) return { roles: loaded.roles };
      const user = await users.findById(token.accountId);
      return user ? { roles: user.roles } : undefined;
    }),
    async renderError(ctx, out) {
      if (out.error === 'temporarily_unavailable') {
        ctx.set('Retry-After', String(RETRY_AFTER_SECONDS));
        views.render(
          ctx as never,
          'error',
          { title: 'Try again in a moment', description: out.error_description },
          503,
        );
        return;
      }
      views.render(
        ctx as never,
        'error',
        { title: 'Something went wrong', error: out.error, description: out.error_description },
        ctx.status,
      );
    },
  };

  const provider = new Provider(config.issuer, configuration);
  // Requests reach it through our app, whose clientAddress() has vetted the forwarded headers
  // and issuerOrigin() set the host and scheme to the issuer's.
  provider.proxy = true;
  keepSessionActivity(provider);
  acceptRotatedSecrets(provider, clients);
  auditProtocolEvents(provider, audit);
  provider.on('server_error', (ctx, err) => {
    if (isUnavailable(err)) ctx.state.unavailable = true;
    else log.error({ err, requestId: ctx.state?.requestId }, 'provider server error');
  });
  provider.use(providerOutagePages(views));
  provider.use(
    spendRotatedTokensOnSuccess(
      (grantId) => adapter.revokeGrant(grantId),
      () => metrics.refreshReuse.inc(),
    ),
  );
  // The route template, for the HTTP metrics and the span's name: only when either is on.
  if (metrics.enabled || config.tracing.endpoint) provider.use(noteProviderRoute);
  countProtocolEvents(provider, metrics);
  return provider;
}
