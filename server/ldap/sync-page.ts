import type { Knex } from 'knex';
import type { Entry } from 'ldapts';
import type { LdapConfig } from '../../config/ldap.ts';
import { entryBasics, toDirectoryUser, type DirectoryUser, type EntryBasics } from './entries.ts';
import { rolesOf, type Member } from './groups.ts';
import {
  applyLink,
  createMany,
  findLinkedMany,
  planLink,
  planUnusable,
  type LinkPlan,
  type SeenIds,
} from './linked-users.ts';
import type { GroupsOf } from './memberships.ts';
import type { DirectorySettings } from './presets.ts';
import { listChange, listProblem, type SyncSummary } from './sync-summary.ts';

// One page of a directory sync's entries, applied to the local accounts (sync.ts runs the pages).

type Planned<P extends LinkPlan = LinkPlan> = { user: Pick<DirectoryUser, 'id' | 'dn'>; plan: P };

/** What a run did so far, and what is left to do once it commits. */
export type RunWork = {
  summary: SyncSummary;
  toSignOut: string[];
  toEndReplaced: { replaced: string; userId: string }[];
  /** The ids of the entries listed (a full run disables the accounts of the others). */
  seen: SeenIds;
  highWater: string;
  groupsOfPage: (users: Member[]) => Promise<GroupsOf>;
};

/** Counts a change carried out, and remembers whom to sign out. */
function counted(work: RunWork, { user, plan }: Planned) {
  const { summary } = work;
  if (plan.action === 'create') summary.created++;
  else if (plan.action === 'disable') summary.disabled++;
  else summary.updated++;
  if (plan.action === 'disable') work.toSignOut.push(plan.user.id);
  listChange(summary, { action: plan.action, directoryId: user.id, dn: user.dn });
}

/** What a page needs of its run's settings. */
export type PageContext = {
  settings: DirectorySettings;
  emailVerified: LdapConfig['emailVerified'];
  /** The later of two change marks (entryCSN as text, uSNChanged as a number). */
  later: (a: string, b: string) => string;
};

/** One page of entries: their accounts found in one query, new ones created in batches. */
export async function applyPage(
  trx: Knex.Transaction,
  entries: Entry[],
  work: RunWork,
  { settings: s, emailVerified, later }: PageContext,
) {
  const failed = (dn: string, err: unknown) =>
    listProblem(work.summary, `${dn}: ${(err as Error).message}`);
  const users: DirectoryUser[] = [];
  /** Entries that are no user (no email) but still have their stable id. */
  const unusable: EntryBasics[] = [];
  for (const entry of entries) {
    try {
      const user = toDirectoryUser(entry, s);
      users.push(user);
      work.highWater = later(work.highWater, user.modified ?? '');
    } catch (err) {
      failed(entry.dn, err);
      try {
        unusable.push(entryBasics(entry, s));
      } catch {
        // no id either: nothing links it to an account
      }
    }
  }
  // An unusable entry still counts as present: a missing email must not disable its account.
  const present = [...users, ...unusable].map((u) => u.id);
  await work.seen.add(present);
  const linked = await findLinkedMany(trx, present);
  const groupsOf = await work.groupsOfPage([...users, ...unusable]);
  const creates: Planned<Extract<LinkPlan, { action: 'create' }>>[] = [];
  const others: Planned[] = [];
  for (const user of users) {
    const roles = rolesOf(groupsOf(user), s.groupRoles);
    const plan = planLink(linked.get(user.id), user, roles, emailVerified);
    if (plan.action === 'create') creates.push({ user, plan });
    else if (plan.action !== 'skip' && plan.action !== 'unchanged') others.push({ user, plan });
  }
  // Its account keeps the rest, but not roles its groups no longer give (nor its sessions,
  // once the directory disables it): losing the email must not freeze them.
  for (const entry of unusable) {
    const local = linked.get(entry.id);
    if (!local) continue;
    const plan = planUnusable(local, rolesOf(groupsOf(entry), s.groupRoles), entry.disabled);
    if (plan.action !== 'unchanged') others.push({ user: entry, plan });
  }
  // The page's new accounts in one statement; when one of them conflicts, each on its own.
  const batch =
    creates.length > 1
      ? await createMany(
          trx,
          creates.map((c) => c.plan),
        )
      : undefined;
  if (batch) {
    work.toEndReplaced.push(...batch.replaced);
    for (const created of creates) counted(work, created);
  }
  for (const one of batch ? others : [...creates, ...others]) {
    try {
      // A savepoint each: one entry's conflict must not undo the others.
      const { user: applied, replaced } = await applyLink(trx, one.plan);
      if (replaced) work.toEndReplaced.push({ replaced, userId: applied!.id });
      counted(work, one);
    } catch (err) {
      failed(one.user.dn, err);
    }
  }
}
