import { AndFilter, EqualityFilter, OrFilter, type Filter } from 'ldapts';
import type { Connection } from './connection.ts';
import { normaliseDn } from './dn.ts';
import type { DirectoryUser } from './entries.ts';
import { attributeIn, inChain } from './filters.ts';
import type { DirectorySettings } from './presets.ts';
import { NO_ATTRIBUTES, searchAll } from './search.ts';

// Group membership, nested groups included. OpenLDAP is followed level by level (a group whose
// member is a group passes its members on); Active Directory answers in one search with the
// in-chain matching rule. Group DNs are returned normalised. A sync resolves a page of users at
// a time instead (memberships.ts).

/** Deeper nesting than this is a loop or a mistake; what was found so far counts. */
export const MAX_NESTING = 16;

export type Member = Pick<DirectoryUser, 'dn' | 'username'>;

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

/** The roles the mapped groups among `groups` give, sorted. */
export function rolesOf(groups: Set<string>, groupRoles: Map<string, string[]>): string[] {
  return [...new Set([...groups].flatMap((g) => groupRoles.get(g) ?? []))].sort();
}
