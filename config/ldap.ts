import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { bool, int, list, setting, type Read } from './setting.ts';

// The settings of the LDAP / Active Directory connection (listed with the others in defaults.ts)
// and Config's `ldap`, which they make. Preset defaults (filters, attribute names) are applied in
// server/ldap/presets.ts; here an unset override stays undefined.

export const ldapSettings = {
  // An empty filter or attribute takes the preset's.
  /** ldap://host[:port] or ldaps://host[:port]; empty turns directory sign-in off. */
  LDAP_URL: setting('', z.string()),
  /** openldap (inetOrgPerson, groupOfNames, posixGroup, entryUUID) or ad (Active Directory). */
  LDAP_PRESET: setting('openldap', z.enum(['openldap', 'ad'])),
  /** Service account that searches for users and reads groups; needed for sync. */
  LDAP_BIND_DN: setting('', z.string()),
  LDAP_BIND_PASSWORD: setting('', z.string()),
  /** A file holding the bind password (a container secret); wins over LDAP_BIND_PASSWORD. */
  LDAP_BIND_PASSWORD_FILE: setting('', z.string()),
  /** Bind users directly at this DN, `{login}` replaced (DN-escaped), instead of search-then-bind. */
  LDAP_BIND_TEMPLATE: setting('', z.string()),
  /** Subtree holding the user entries, e.g. ou=people,dc=example,dc=org. */
  LDAP_USER_BASE: setting('', z.string()),
  /** Which entries are users; add conditions (a group, not disabled) here. Preset when empty. */
  LDAP_USER_FILTER: setting('', z.string()),
  /** Comma-separated attributes a login is compared with (equality only). Preset when empty. */
  LDAP_LOGIN_ATTRIBUTES: setting('', list),
  /** Subtree holding groups; empty: groups are not read and directory users get no roles. */
  LDAP_GROUP_BASE: setting('', z.string()),
  LDAP_GROUP_FILTER: setting('', z.string()),
  /** `<group DN>=<role>;...` or a JSON object; members of nested groups count as members. */
  LDAP_GROUP_ROLES: setting('', z.string()),
  /** Attribute mapping overrides: stable id, username, email (comma-separated fallbacks), names. */
  LDAP_ATTR_ID: setting('', z.string()),
  LDAP_ATTR_USERNAME: setting('', z.string()),
  LDAP_ATTR_EMAIL: setting('', list),
  LDAP_ATTR_NAME: setting('', z.string()),
  LDAP_ATTR_GIVEN_NAME: setting('', z.string()),
  LDAP_ATTR_FAMILY_NAME: setting('', z.string()),
  /** Upgrade ldap:// with StartTLS (RFC 4513 §3) before any bind; required in production off loopback. */
  LDAP_STARTTLS: setting(false, bool),
  /** PEM file of the CA(s) that sign the directory's certificate; empty: the system's CAs. */
  LDAP_CA_FILE: setting('', z.string()),
  /** A sign-in page waits at most this for a TCP (and TLS) connection to the directory. */
  LDAP_CONNECT_TIMEOUT_MS: setting(3000, int(100)),
  /** And this for each LDAP operation, so a hung directory fails fast as "unavailable". */
  LDAP_TIMEOUT_MS: setting(5000, int(100)),
  /** Service-account connections kept per process; searches are short, a few serve many logins. */
  LDAP_POOL_SIZE: setting(4, int(1, 100)),
  /** Entries per page of a paged search (RFC 2696); under AD's default MaxPageSize of 1000. */
  LDAP_PAGE_SIZE: setting(500, int(1, 10000)),
  /** Seconds between scheduled syncs (incremental by modification time); 0 turns them off. */
  LDAP_SYNC_INTERVAL_SECONDS: setting(300, int(0)),
  /**
   * A scheduled sync lists everyone (and so notices deleted entries) when the last full one is
   * older than this; incremental runs see changed entries only.
   */
  LDAP_FULL_SYNC_INTERVAL_SECONDS: setting(3600, int(0)),
  /** /readyz fails when the directory does not answer; off: reported, not failing. */
  LDAP_READINESS_REQUIRED: setting(false, bool),
  /** Directory emails count as verified; turn off when users may edit their own mail attribute. */
  LDAP_EMAIL_VERIFIED: setting(true, bool),
  /** Shown on the password reset and change pages to directory users. */
  LDAP_PASSWORD_MESSAGE: setting(
    "Your password is managed by your organisation's directory: change or reset it there.",
    z.string().min(1),
  ),
};

type Parsed = Read<typeof ldapSettings>;
export type LdapPreset = Parsed['LDAP_PRESET'];
export type LdapConfig = NonNullable<ReturnType<typeof ldapConfig>>;

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
export function ldapConfig(c: Parsed, production: boolean, problems: string[]) {
  if (!c.LDAP_URL) return undefined;
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
  const optionalList = (names: string[]) => (names.length ? names : undefined);

  return {
    url: c.LDAP_URL.replace(/\/$/, ''),
    preset: c.LDAP_PRESET,
    /** The service account that searches; undefined: users bind through bindTemplate alone. */
    bind: c.LDAP_BIND_DN ? { dn: c.LDAP_BIND_DN, password } : undefined,
    /** A DN with `{login}`, bound directly (the login DN-escaped) instead of search-then-bind. */
    bindTemplate: optional(c.LDAP_BIND_TEMPLATE),
    userBase: c.LDAP_USER_BASE,
    userFilter: optional(c.LDAP_USER_FILTER),
    loginAttributes: optionalList(c.LDAP_LOGIN_ATTRIBUTES),
    /** Undefined: groups are not read and directory users get no roles. */
    groupBase: optional(c.LDAP_GROUP_BASE),
    groupFilter: optional(c.LDAP_GROUP_FILTER),
    /** Group DN (as written) → roles its members get, nested members included. */
    groupRoles,
    /** Attribute names a preset fills in when not given. */
    attributes: {
      id: optional(c.LDAP_ATTR_ID),
      username: optional(c.LDAP_ATTR_USERNAME),
      email: optionalList(c.LDAP_ATTR_EMAIL),
      name: optional(c.LDAP_ATTR_NAME),
      givenName: optional(c.LDAP_ATTR_GIVEN_NAME),
      familyName: optional(c.LDAP_ATTR_FAMILY_NAME),
    },
    startTls: c.LDAP_STARTTLS,
    /** PEM of the CAs that may sign the server's certificate; undefined: the system's. */
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
  };
}
