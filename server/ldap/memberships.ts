import type { Knex } from 'knex';
import type { Connection } from './connection.ts';
import { normaliseDn } from './dn.ts';
import { allValues } from './entries.ts';
import { inChain } from './filters.ts';
import { MAX_NESTING, type Member } from './groups.ts';
import type { DirectorySettings } from './presets.ts';
import { NO_ATTRIBUTES, searchPages } from './search.ts';

// Group membership for a sync, which reads users a page at a time. OpenLDAP cannot be asked,
// page by page and at the speed of a sync, which groups a page's users are in: a search per
// user, or the matched-values control (whose cost grows with the groups' sizes, page after
// page), are several times slower than the sync itself. And a group entry carries all its
// members. So the memberships are read once, before the users, into a temporary table of the
// sync's transaction, and each page looks up its own users there: the process holds a page of
// groups, then a page of users, not the directory. A row (member, grp): the member is a
// normalised DN, or `uid:<username>` for posixGroup's memberUid (compared without case); the
// group a normalised DN.

const TABLE = 'directory_sync_members';

/**
 * Groups per search page. A group entry arrives with all its members: 20 groups of 1,000
 * members are about as many values as a page of 500 users' attributes.
 */
const GROUPS_PER_PAGE = 20;

/** Rows per INSERT (two array parameters whatever the count): what is held before it is written. */
const ROWS_PER_INSERT = 10_000;

/** The groups of one user of the page, nested included. */
export type GroupsOf = (user: Member) => Set<string>;

/** PostgreSQL text cannot hold NUL: such a key names no one anyway. */
const storable = (key: string) => !key.includes('\0');

/** The member keys a user is known by in the table. */
function keysOf(user: Member, s: DirectorySettings): string[] {
  const keys: string[] = [];
  try {
    keys.push(normaliseDn(user.dn));
  } catch {
    // not a DN we can compare: no group names it
  }
  if (s.memberUidAttribute && user.username) keys.push(`uid:${user.username.toLowerCase()}`);
  return keys.filter(storable);
}

/** Writes rows in batches of ROWS_PER_INSERT. */
function rowWriter(trx: Knex.Transaction) {
  let members: string[] = [];
  let groups: string[] = [];
  const flush = async () => {
    if (!members.length) return;
    const rows = [members, groups];
    [members, groups] = [[], []];
    await trx.raw(
      `INSERT INTO ${TABLE} (member, grp) SELECT * FROM unnest(?::text[], ?::text[])`,
      rows,
    );
  };
  return {
    async add(member: string, group: string) {
      if (!storable(member)) return;
      members.push(member);
      groups.push(group);
      if (members.length >= ROWS_PER_INSERT) await flush();
    },
    flush,
  };
}

/** Every membership into the table. */
async function load(
  trx: Knex.Transaction,
  client: Connection,
  s: DirectorySettings,
  pageSize: number,
): Promise<void> {
  await trx.raw(
    `CREATE TEMPORARY TABLE IF NOT EXISTS ${TABLE} (member text NOT NULL, grp text NOT NULL) ON COMMIT DROP`,
  );
  await trx.raw(`TRUNCATE ${TABLE}`);
  const rows = rowWriter(trx);
  if (s.nesting === 'in-chain') {
    // AD: the members, nested included, of each group that maps to roles (only those can give
    // a role), a page of users at a time.
    for (const group of s.groupRoles.keys()) {
      const pages = searchPages(
        client,
        {
          base: s.userBase,
          filter: inChain(s.userFilter, 'memberOf', group),
          attributes: NO_ATTRIBUTES,
        },
        pageSize,
      );
      for await (const page of pages)
        for (const user of page) await rows.add(normaliseDn(user.dn), group);
    }
  } else {
    const attributes = [s.memberAttribute, ...(s.memberUidAttribute ? [s.memberUidAttribute] : [])];
    const pages = searchPages(
      client,
      { base: s.groupBase!, filter: s.groupFilter, attributes },
      Math.min(pageSize, GROUPS_PER_PAGE),
    );
    for await (const page of pages)
      for (const group of page) {
        const dn = normaliseDn(group.dn);
        for (const member of allValues(group, s.memberAttribute)) {
          let key: string;
          try {
            key = normaliseDn(member);
          } catch {
            continue; // A malformed member value names no one.
          }
          await rows.add(key, dn);
        }
        if (s.memberUidAttribute)
          for (const uid of allValues(group, s.memberUidAttribute))
            await rows.add(`uid:${uid.toLowerCase()}`, dn);
      }
  }
  await rows.flush();
  // Indexed and analysed once full: the page lookups are index probes, and planned as such.
  await trx.raw(`CREATE INDEX IF NOT EXISTS ${TABLE}_member ON ${TABLE} (member)`);
  await trx.raw(`ANALYZE ${TABLE}`);
}

/**
 * The groups each of `keys` is directly in. OFFSET 0 keeps the subquery from being flattened
 * into a join, which the planner would run as a scan of the whole table: one index probe per key.
 */
async function groupsOfKeys(trx: Knex.Transaction, keys: string[]) {
  const { rows } = (await trx.raw(
    `SELECT k.member, t.grp FROM unnest(?::text[]) AS k(member)
       CROSS JOIN LATERAL (SELECT m.grp FROM ${TABLE} m WHERE m.member = k.member OFFSET 0) t`,
    [keys],
  )) as { rows: { member: string; grp: string }[] };
  const groups = new Map<string, string[]>();
  for (const { member, grp } of rows) {
    if (!groups.has(member)) groups.set(member, []);
    groups.get(member)!.push(grp);
  }
  return groups;
}

/**
 * For one sync run (its transaction and connection): reads the memberships, and then resolves
 * the groups of a page of users from them. Before the users are listed: OpenLDAP keeps one
 * paged search per connection, and a second one started midway ends the first.
 */
export async function syncMemberships(
  trx: Knex.Transaction,
  client: Connection,
  s: DirectorySettings,
  pageSize: number,
): Promise<(users: Member[]) => Promise<GroupsOf>> {
  if (!s.groupBase) return async () => () => new Set();
  await load(trx, client, s, pageSize);
  return async function groupsOfPage(users) {
    const keys = new Map(users.map((user) => [user, keysOf(user, s)]));
    const direct = await groupsOfKeys(trx, [...new Set([...keys.values()].flat())]);
    // The groups above those, level by level (AD's in-chain rows already hold them).
    const parents = new Map<string, string[]>();
    if (s.nesting === 'recursive') {
      const seen = new Set([...direct.values()].flat());
      let level = [...seen];
      for (let depth = 1; depth < MAX_NESTING && level.length; depth++) {
        const above = await groupsOfKeys(trx, level);
        level = [];
        for (const [group, groups] of above) {
          parents.set(group, groups);
          for (const g of groups) {
            if (seen.has(g)) continue;
            seen.add(g);
            level.push(g);
          }
        }
      }
    }
    return (user) => {
      const found = new Set<string>();
      let frontier = (keys.get(user) ?? []).flatMap((key) => direct.get(key) ?? []);
      for (let depth = 0; depth < MAX_NESTING && frontier.length; depth++) {
        const fresh = frontier.filter((g) => !found.has(g));
        for (const g of fresh) found.add(g);
        frontier = fresh.flatMap((g) => parents.get(g) ?? []);
      }
      return found;
    };
  };
}
