import { AndFilter, EqualityFilter, OrFilter, type Filter } from 'ldapts';
import type { Connection } from './connection.ts';
import { normaliseDn } from './dn.ts';
import { allValues, type DirectoryUser } from './entries.ts';
import { attributeIn, inChain } from './filters.ts';
import type { DirectorySettings } from './presets.ts';
import { NO_ATTRIBUTES, searchAll } from './search.ts';

// Group membership, nested groups included. OpenLDAP is followed level by level (a group whose
// member is a group passes its members on); Active Directory answers in one search with the
// in-chain matching rule. Group DNs are returned normalised.

/** Deeper nesting than this is a loop or a mistake; what was found so far counts. */
const MAX_NESTING = 16;

type Member = Pick<DirectoryUser, 'dn' | 'username'>;

/** The groups `user` belongs to, directly or through nested groups. */
export async function groupsOf(
  client: Connection,
  s: DirectorySettings,
  user: Member,
  pageSize: number,
): Promise<Set<string>> {
  if (!s.groupBase) return new Set();
  if (s.nesting === 'in-chain') {
    const entries = await searchAll(
      client,
      {
        base: s.groupBase,
        filter: inChain(s.groupFilter, s.memberAttribute, user.dn),
        attributes: NO_ATTRIBUTES,
      },
      pageSize,
    );
    return new Set(entries.map((e) => normaliseDn(e.dn)));
  }
  const found = new Set<string>();
  const direct: Filter[] = [new EqualityFilter({ attribute: s.memberAttribute, value: user.dn })];
  if (s.memberUidAttribute && user.username)
    direct.push(new EqualityFilter({ attribute: s.memberUidAttribute, value: user.username }));
  let filter: Filter = new AndFilter({
    filters: [s.groupFilter, new OrFilter({ filters: direct })],
  });
  for (let depth = 0; depth < MAX_NESTING; depth++) {
    const level = await searchAll(
      client,
      { base: s.groupBase, filter, attributes: NO_ATTRIBUTES },
      pageSize,
    );
    const fresh = level.map((e) => e.dn).filter((dn) => !found.has(normaliseDn(dn)));
    if (!fresh.length) break;
    for (const dn of fresh) found.add(normaliseDn(dn));
    filter = attributeIn(s.groupFilter, s.memberAttribute, fresh);
  }
  return found;
}

/**
 * For a sync: reads group membership once and answers "which groups is this user in" from
 * memory. OpenLDAP: every group with its members. AD: the members, nested included, of each
 * group that maps to roles (only those can change a role).
 */
export async function loadGroupIndex(
  client: Connection,
  s: DirectorySettings,
  pageSize: number,
): Promise<(user: Member) => Set<string>> {
  if (!s.groupBase) return () => new Set();
  if (s.nesting === 'in-chain') {
    const membersOf = new Map<string, Set<string>>();
    for (const group of s.groupRoles.keys()) {
      const members = await searchAll(
        client,
        {
          base: s.userBase,
          filter: inChain(s.userFilter, 'memberOf', group),
          attributes: NO_ATTRIBUTES,
        },
        pageSize,
      );
      membersOf.set(group, new Set(members.map((m) => normaliseDn(m.dn))));
    }
    return (user) => {
      const dn = normaliseDn(user.dn);
      return new Set([...membersOf].filter(([, members]) => members.has(dn)).map(([g]) => g));
    };
  }
  const attributes = [s.memberAttribute, ...(s.memberUidAttribute ? [s.memberUidAttribute] : [])];
  const groups = await searchAll(
    client,
    { base: s.groupBase, filter: s.groupFilter, attributes },
    pageSize,
  );
  const parents = new Map<string, Set<string>>();
  const link = (key: string, group: string) => {
    if (!parents.has(key)) parents.set(key, new Set());
    parents.get(key)!.add(group);
  };
  for (const group of groups) {
    const dn = normaliseDn(group.dn);
    for (const member of allValues(group, s.memberAttribute)) {
      try {
        link(normaliseDn(member), dn);
      } catch {
        // A malformed member value names no one.
      }
    }
    if (s.memberUidAttribute)
      for (const uid of allValues(group, s.memberUidAttribute))
        link(`uid:${uid.toLowerCase()}`, dn);
  }
  return (user) => {
    const found = new Set<string>();
    let frontier = [
      ...(parents.get(normaliseDn(user.dn)) ?? []),
      ...(user.username ? (parents.get(`uid:${user.username.toLowerCase()}`) ?? []) : []),
    ];
    for (let depth = 0; depth < MAX_NESTING && frontier.length; depth++) {
      const fresh = frontier.filter((g) => !found.has(g));
      for (const g of fresh) found.add(g);
      frontier = fresh.flatMap((g) => [...(parents.get(g) ?? [])]);
    }
    return found;
  };
}

/** The roles the mapped groups among `groups` give, sorted. */
export function rolesOf(groups: Set<string>, groupRoles: Map<string, string[]>): string[] {
  return [...new Set([...groups].flatMap((g) => groupRoles.get(g) ?? []))].sort();
}
