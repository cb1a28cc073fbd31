/**
 * The admin API's version is in its path and nowhere else: a new major version would be a new
 * router beside this one.
 */
export const ADMIN_API_PATH = '/api/v1';

/** The resource indicator (RFC 8707) of the admin API: what its access tokens are issued for. */
export const adminApiAudience = (issuer: string) => `${issuer}${ADMIN_API_PATH}`;

/** Each scope allows exactly the routes that name it; no scope implies another. */
export const ADMIN_SCOPES = [
  'users:read',
  'users:write',
  'clients:read',
  'clients:write',
  'sessions:read',
  'sessions:write',
  'audit:read',
  'keys:write',
  'directory:sync',
] as const;

export type AdminScope = (typeof ADMIN_SCOPES)[number];

export const isAdminScope = (scope: string): scope is AdminScope =>
  (ADMIN_SCOPES as readonly string[]).includes(scope);

/** The role a person needs, besides a second factor, to use the admin API with their token. */
export const ADMIN_ROLE = 'admin';
