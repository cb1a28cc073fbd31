import type { KoaContextWithOIDC } from 'oidc-provider';
import { adminApiAudience } from './scopes.ts';

type IssuedToken = { kind: string; aud?: string | string[] | undefined };
type Source = { acr?: unknown; authTime?: unknown } | undefined;

/**
 * What an access token for the admin API carries besides oidc-provider's claims: a person's
 * token the `acr` and `auth_time` of the sign-in it comes from (bearer.ts wants a second factor,
 * and a sign-in since the account was last signed out everywhere), a client's own
 * token `gty` client_credentials, which tells the two apart in a JWT. Undefined for any other
 * token.
 */
export function adminApiClaims(
  ctx: KoaContextWithOIDC,
  token: IssuedToken,
  issuer: string,
): Record<string, unknown> | undefined {
  const audiences = Array.isArray(token.aud) ? token.aud : [token.aud];
  if (!audiences.includes(adminApiAudience(issuer))) return undefined;
  if (token.kind === 'ClientCredentials') return { gty: 'client_credentials' };
  const entities = (ctx?.oidc?.entities ?? {}) as Record<string, Source>;
  const source = entities.AuthorizationCode ?? entities.RefreshToken ?? entities.DeviceCode;
  return { acr: source?.acr, auth_time: source?.authTime };
}
