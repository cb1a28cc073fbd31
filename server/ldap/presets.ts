import type { Filter } from 'ldapts';
import type { LdapConfig, LdapPreset } from '../../config/ldap.ts';
import { normaliseDn } from './dn.ts';
import { parseFilter } from './filters.ts';

/** How a directory nests groups: followed search by search, or by AD's in-chain rule. */
export type Nesting = 'recursive' | 'in-chain';

type Preset = {
  userFilter: string;
  loginAttributes: string[];
  groupFilter: string;
  attributes: {
    id: string;
    username: string;
    email: string[];
    name: string;
    givenName: string;
    familyName: string;
    /**
     * What orders changes, for incremental sync: OpenLDAP's entryCSN (a timestamp to the
     * microsecond: modifyTimestamp's whole seconds would make changes within the second of the
     * last run ambiguous), AD's uSNChanged (a counter of the DC's changes; whenChanged has
     * whole seconds too).
     */
    modified: string;
  };
  /** uSNChanged is a number: "9" comes after "10" as text. */
  modifiedIsNumber: boolean;
  nesting: Nesting;
  /** posixGroup's memberUid holds usernames, not DNs. */
  memberUidAttribute: string | undefined;
  /** The attribute that says whether the account is disabled, and how to read it. */
  disabledAttribute: string;
  isDisabled(value: string | undefined): boolean;
};

/** ppolicy's "locked by an administrator until unlocked" (draft-behera-ldap-password-policy §5.3.3). */
export const PPOLICY_ADMIN_LOCK = '000001010000Z';
/** userAccountControl's ACCOUNTDISABLE flag (MS-ADTS §2.2.16). */
const UAC_ACCOUNT_DISABLED = 0x2;

export const PRESETS: Record<LdapPreset, Preset> = {
  openldap: {
    userFilter: '(objectClass=inetOrgPerson)',
    loginAttributes: ['uid', 'mail'],
    groupFilter: '(|(objectClass=groupOfNames)(objectClass=posixGroup))',
    attributes: {
      id: 'entryUUID',
      username: 'uid',
      email: ['mail'],
      name: 'cn',
      givenName: 'givenName',
      familyName: 'sn',
      modified: 'entryCSN',
    },
    modifiedIsNumber: false,
    // OpenLDAP knows no in-chain rule: a memberOf:1.2.840.113556.1.4.1941: filter succeeds
    // with zero entries there, so nesting is followed one search per level.
    nesting: 'recursive',
    memberUidAttribute: 'memberUid',
    // A ppolicy lock set by an administrator; a temporary lockout after failed binds is not a
    // disabled account (its bind fails with 49 like a wrong password, and it passes).
    disabledAttribute: 'pwdAccountLockedTime',
    isDisabled: (value) => value === PPOLICY_ADMIN_LOCK,
  },
  ad: {
    userFilter: '(&(objectCategory=person)(objectClass=user))',
    loginAttributes: ['sAMAccountName', 'userPrincipalName', 'mail'],
    groupFilter: '(objectClass=group)',
    attributes: {
      id: 'objectGUID',
      username: 'sAMAccountName',
      // Many AD users have no mail; their userPrincipalName is an address-shaped name.
      email: ['mail', 'userPrincipalName'],
      name: 'displayName',
      givenName: 'givenName',
      familyName: 'sn',
      modified: 'uSNChanged',
    },
    modifiedIsNumber: true,
    nesting: 'in-chain',
    memberUidAttribute: undefined,
    disabledAttribute: 'userAccountControl',
    isDisabled: (value) => (Number(value ?? 0) & UAC_ACCOUNT_DISABLED) !== 0,
  },
};

/** The preset with the administrator's overrides applied, filters parsed, DNs normalised. */
export type DirectorySettings = Omit<Preset, 'userFilter' | 'groupFilter'> & {
  preset: LdapPreset;
  userBase: string;
  userFilter: Filter;
  groupBase: string | undefined;
  groupFilter: Filter;
  memberAttribute: string;
  /** objectGUID arrives as 16 bytes and is kept as its UUID string. */
  binaryId: boolean;
  /** Normalised group DN → roles. */
  groupRoles: Map<string, string[]>;
  /** Bind DN template with `{login}`, when users are bound directly. */
  bindTemplate: string | undefined;
};

/** Throws with the setting's name when a filter or group DN from the configuration is malformed. */
export function directorySettings(config: LdapConfig): DirectorySettings {
  const preset = PRESETS[config.preset];
  const a = config.attributes;
  const id = a.id ?? preset.attributes.id;
  const groupRoles = new Map<string, string[]>();
  for (const [group, roles] of Object.entries(config.groupRoles)) {
    let key: string;
    try {
      key = normaliseDn(group);
    } catch {
      throw new Error(`LDAP_GROUP_ROLES: not a DN: ${group}`);
    }
    groupRoles.set(key, [...new Set([...(groupRoles.get(key) ?? []), ...roles])]);
  }
  return {
    ...preset,
    preset: config.preset,
    userBase: config.userBase,
    userFilter: parseFilter(config.userFilter ?? preset.userFilter, 'LDAP_USER_FILTER'),
    loginAttributes: config.loginAttributes ?? preset.loginAttributes,
    groupBase: config.groupBase,
    groupFilter: parseFilter(config.groupFilter ?? preset.groupFilter, 'LDAP_GROUP_FILTER'),
    memberAttribute: 'member',
    attributes: {
      id,
      username: a.username ?? preset.attributes.username,
      email: a.email ?? preset.attributes.email,
      name: a.name ?? preset.attributes.name,
      givenName: a.givenName ?? preset.attributes.givenName,
      familyName: a.familyName ?? preset.attributes.familyName,
      modified: preset.attributes.modified,
    },
    binaryId: id.toLowerCase() === 'objectguid',
    groupRoles,
    bindTemplate: config.bindTemplate,
  };
}
