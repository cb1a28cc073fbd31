import { readFileSync } from 'node:fs';
import { z } from 'zod';

// Settings of the LDAP / Active Directory connection: their schema and the typed view loadConfig
// builds from them. Preset defaults (filters, attribute names) are applied in server/ldap/presets.ts;
// here an unset override stays undefined.

const bool = z
  .union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no'])])
  .transform((v) => v === true || v === 'true' || v === '1' || v === 'yes');
const int = (min: number) => z.coerce.number().int().min(min);

export const ldapSchema = {
  LDAP_URL: z.string(),
  LDAP_PRESET: z.enum(['openldap', 'ad']),
  LDAP_BIND_DN: z.string(),
  LDAP_BIND_PASSWORD: z.string(),
  LDAP_BIND_PASSWORD_FILE: z.string(),
  LDAP_BIND_TEMPLATE: z.string(),
  LDAP_USER_BASE: z.string(),
  LDAP_USER_FILTER: z.string(),
  LDAP_LOGIN_ATTRIBUTES: z.string(),
  LDAP_GROUP_BASE: z.string(),
  LDAP_GROUP_FILTER: z.string(),
  LDAP_GROUP_ROLES: z.string(),
  LDAP_ATTR_ID: z.string(),
  LDAP_ATTR_USERNAME: z.string(),
  LDAP_ATTR_EMAIL: z.string(),
  LDAP_ATTR_NAME: z.string(),
  LDAP_ATTR_GIVEN_NAME: z.string(),
  LDAP_ATTR_FAMILY_NAME: z.string(),
  LDAP_STARTTLS: bool,
  LDAP_CA_FILE: z.string(),
  LDAP_CONNECT_TIMEOUT_MS: int(100),
  LDAP_TIMEOUT_MS: int(100),
  LDAP_POOL_SIZE: int(1).max(100),
  LDAP_PAGE_SIZE: int(1).max(10000),
  LDAP_SYNC_INTERVAL_SECONDS: int(0),
  LDAP_FULL_SYNC_INTERVAL_SECONDS: int(0),
  LDAP_READINESS_REQUIRED: bool,
  LDAP_EMAIL_VERIFIED: bool,
  LDAP_PASSWORD_MESSAGE: z.string().min(1),
};

type Parsed = { [K in keyof typeof ldapSchema]: z.output<(typeof ldapSchema)[K]> };

export type LdapPreset = 'openldap' | 'ad';

/** Attribute names a preset fills in when not given. */
export type LdapAttributeOverrides = {
  id?: string | undefined;
  username?: string | undefined;
  email?: string[] | undefined;
  name?: string | undefined;
  givenName?: string | undefined;
  familyName?: string | undefined;
};

export type LdapConfig = {
  url: string;
  preset: LdapPreset;
  /** The service account that searches; undefined: users bind through bindTemplate alone. */
  bind: { dn: string; password: string } | undefined;
  /** A DN with `{login}`, bound directly (the login DN-escaped) instead of search-then-bind. */
  bindTemplate: string | undefined;
  userBase: string;
  userFilter: string | undefined;
  loginAttributes: string[] | undefined;
  /** Undefined: groups are not read and directory users get no roles. */
  groupBase: string | undefined;
  groupFilter: string | undefined;
  /** Group DN (as written) → roles its members get, nested members included. */
  groupRoles: Record<string, string[]>;
  attributes: LdapAttributeOverrides;
  startTls: boolean;
  /** PEM of the CAs that may sign the server's certificate; undefined: the system's. */
  ca: string | undefined;
  connectTimeoutMs: number;
  timeoutMs: number;
  poolSize: number;
  pageSize: number;
  syncIntervalSeconds: number;
  fullSyncIntervalSeconds: number;
  readinessRequired: boolean;
  emailVerified: boolean;
  passwordMessage: string;
};

const list = (text: string) =>
  text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

/**
 * LDAP_GROUP_ROLES: `cn=admins,ou=groups,dc=example,dc=test=admin;cn=ops,...=operator`, each
 * pair split at its last `=` (repeat a group for several roles), or a JSON object
 * `{"<group DN>": "role" | ["role", ...]}` for DNs that contain `;`.
 */
export function parseGroupRoles(text: string): Record<string, string[]> {
  const roles: Record<string, string[]> = {};
  const add = (group: string, role: string) => {
    // A group DN has an `=` of its own: "cn=admins" alone is a DN without a role.
    if (!group.includes('=') || !role.trim()) throw new Error(`no role for "${group}=${role}"`);
    (roles[group.trim()] ??= []).push(role.trim());
  };
  if (text.trim().startsWith('{')) {
    const parsed = z
      .record(z.string(), z.union([z.string(), z.array(z.string())]))
      .parse(JSON.parse(text));
    for (const [group, value] of Object.entries(parsed))
      for (const role of [value].flat()) add(group, role);
    return roles;
  }
  for (const pair of text.split(';').filter((p) => p.trim())) {
    const at = pair.lastIndexOf('=');
    add(pair.slice(0, at), at < 0 ? '' : pair.slice(at + 1));
  }
  return roles;
}

function readSecretFile(path: string, what: string, problems: string[]): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    problems.push(`${what}: cannot read ${path} (${(err as NodeJS.ErrnoException).code})`);
    return undefined;
  }
}

function isLoopback(url: URL): boolean {
  return ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname);
}

/** The LDAP settings, or undefined when LDAP_URL is empty; problems are added to `problems`. */
export function ldapConfig(
  c: Parsed,
  production: boolean,
  problems: string[],
): { ldap: LdapConfig | undefined } {
  if (!c.LDAP_URL) return { ldap: undefined };
  let url: URL | undefined;
  try {
    url = new URL(c.LDAP_URL);
  } catch {
    // reported below
  }
  if (!url || !['ldap:', 'ldaps:'].includes(url.protocol) || url.pathname.length > 1)
    problems.push('LDAP_URL: ldap://host[:port] or ldaps://host[:port]');
  else if (url.protocol === 'ldaps:' && c.LDAP_STARTTLS)
    problems.push('LDAP_STARTTLS: not with an ldaps:// URL, which is TLS already');
  // A simple bind sends the password as it is: never across a network in the clear.
  else if (production && url.protocol === 'ldap:' && !c.LDAP_STARTTLS && !isLoopback(url))
    problems.push('LDAP_URL: production requires ldaps:// or LDAP_STARTTLS=true');
  if (!c.LDAP_USER_BASE) problems.push('LDAP_USER_BASE: required with LDAP_URL');

  let password = c.LDAP_BIND_PASSWORD;
  if (c.LDAP_BIND_PASSWORD_FILE)
    password =
      readSecretFile(c.LDAP_BIND_PASSWORD_FILE, 'LDAP_BIND_PASSWORD_FILE', problems)?.replace(
        /\r?\n$/,
        '',
      ) ?? '';
  if (c.LDAP_BIND_DN && !password)
    problems.push('LDAP_BIND_PASSWORD: required with LDAP_BIND_DN (or LDAP_BIND_PASSWORD_FILE)');
  if (!c.LDAP_BIND_DN && !c.LDAP_BIND_TEMPLATE)
    problems.push('LDAP_BIND_DN: required (or LDAP_BIND_TEMPLATE to bind users directly)');
  if (c.LDAP_BIND_TEMPLATE && !c.LDAP_BIND_TEMPLATE.includes('{login}'))
    problems.push('LDAP_BIND_TEMPLATE: must contain {login}');
  if (!c.LDAP_BIND_DN && c.LDAP_SYNC_INTERVAL_SECONDS > 0)
    problems.push('LDAP_SYNC_INTERVAL_SECONDS: sync needs LDAP_BIND_DN (or set 0 to turn it off)');

  let groupRoles: Record<string, string[]> = {};
  try {
    groupRoles = parseGroupRoles(c.LDAP_GROUP_ROLES);
  } catch (err) {
    problems.push(
      `LDAP_GROUP_ROLES: "<group DN>=<role>;..." or a JSON object (${(err as Error).message})`,
    );
  }
  const ca = c.LDAP_CA_FILE ? readSecretFile(c.LDAP_CA_FILE, 'LDAP_CA_FILE', problems) : undefined;
  const optional = (text: string) => text.trim() || undefined;

  return {
    ldap: {
      url: c.LDAP_URL.replace(/\/$/, ''),
      preset: c.LDAP_PRESET,
      bind: c.LDAP_BIND_DN ? { dn: c.LDAP_BIND_DN, password } : undefined,
      bindTemplate: optional(c.LDAP_BIND_TEMPLATE),
      userBase: c.LDAP_USER_BASE,
      userFilter: optional(c.LDAP_USER_FILTER),
      loginAttributes: list(c.LDAP_LOGIN_ATTRIBUTES).length
        ? list(c.LDAP_LOGIN_ATTRIBUTES)
        : undefined,
      groupBase: optional(c.LDAP_GROUP_BASE),
      groupFilter: optional(c.LDAP_GROUP_FILTER),
      groupRoles,
      attributes: {
        id: optional(c.LDAP_ATTR_ID),
        username: optional(c.LDAP_ATTR_USERNAME),
        email: list(c.LDAP_ATTR_EMAIL).length ? list(c.LDAP_ATTR_EMAIL) : undefined,
        name: optional(c.LDAP_ATTR_NAME),
        givenName: optional(c.LDAP_ATTR_GIVEN_NAME),
        familyName: optional(c.LDAP_ATTR_FAMILY_NAME),
      },
      startTls: c.LDAP_STARTTLS,
      ca,
      connectTimeoutMs: c.LDAP_CONNECT_TIMEOUT_MS,
      timeoutMs: c.LDAP_TIMEOUT_MS,
      poolSize: c.LDAP_POOL_SIZE,
      pageSize: c.LDAP_PAGE_SIZE,
      syncIntervalSeconds: c.LDAP_SYNC_INTERVAL_SECONDS,
      fullSyncIntervalSeconds: c.LDAP_FULL_SYNC_INTERVAL_SECONDS,
      readinessRequired: c.LDAP_READINESS_REQUIRED,
      emailVerified: c.LDAP_EMAIL_VERIFIED,
      passwordMessage: c.LDAP_PASSWORD_MESSAGE,
    },
  };
}
