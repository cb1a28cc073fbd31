import type { Knex } from 'knex';
import type { Entry } from 'ldapts';
import type { LdapConfig } from '../../config/ldap.ts';
import type { AccountSignOut } from '../users/sign-out.ts';
import type { Audit, AuditEvent } from '../audit/audit.ts';
import type { Db } from '../db.ts';
import { withAdvisoryLock } from '../locks.ts';
import type { Logger } from '../log.ts';
import { firstValue, stableId, toDirectoryUser, userAttributes } from './entries.ts';
import { changedSince } from './filters.ts';
import { loadGroupIndex, rolesOf } from './groups.ts';
import {
  applyLink,
  countActiveLinked,
  endReplaced,
  findLinked,
  markMissing,
  planLink,
  signOutDisabled,
  unseenLinked,
} from './linked-users.ts';
import type { ConnectionPool } from './pool.ts';
import type { DirectorySettings } from './presets.ts';
import { searchAll } from './search.ts';
import { recordSyncRun } from './sync-report.ts';

export type SyncSummary = {
  mode: 'full' | 'incremental';
  dryRun: boolean;
  created: number;
  updated: number;
  disabled: number;
  errors: number;
  /** One line per error, naming the entry (DNs, no emails). */
  problems: string[];
  /** What changed (or would, in a dry run). */
  changes: { action: string; directoryId: string; dn: string | null }[];
};

export type SyncOptions = {
  dryRun?: boolean;
  /** List every user (notices deleted entries); otherwise incremental when a full run is recent. */
  full?: boolean;
  /** Who asked, for the audit trail: the scheduler (system) or an admin at the CLI. */
  actor?: AuditEvent['actor'];
};

export type SyncDeps = {
  config: LdapConfig;
  settings: DirectorySettings;
  pool: ConnectionPool;
  db: Db;
  log: Logger;
  audit: Audit;
  signOut: AccountSignOut;
};

const STATE_ID = 'ldap';
const LOCK = 'ldap-sync';

/** Thrown to roll a dry run's transaction back once everything has been tried. */
class DryRunDone extends Error {
  readonly summary: SyncSummary;
  constructor(summary: SyncSummary) {
    super('dry run');
    this.summary = summary;
  }
}

type SyncState = { high_water: string | null; last_full_at: Date | null };

function chooseMode(state: SyncState | undefined, options: SyncOptions, config: LdapConfig) {
  if (options.full || !state?.high_water || !state.last_full_at) return 'full';
  const age = (Date.now() - new Date(state.last_full_at).getTime()) / 1000;
  return age >= config.fullSyncIntervalSeconds ? 'full' : 'incremental';
}

/**
 * Brings local directory users in line with the directory: creates, updates, disables (and
 * signs out) accounts. One process at a time (an advisory lock); undefined when another holds
 * it. A full run also disables accounts whose entries are gone; an incremental one reads only
 * entries changed since the last run, and becomes a full one when a group changed (a group's
 * change does not touch its members' modification time).
 */
export function createDirectorySync(deps: SyncDeps) {
  const { config, settings: s, pool, db, log, audit, signOut } = deps;
  const modified = s.attributes.modified;
  const markOf = (entry: Entry) => String(firstValue(entry, modified) ?? '');
  /** Whether change mark `a` comes after `b` (entryCSN as text, uSNChanged as a number). */
  const isAfter = (a: string, b: string) =>
    Boolean(a) && (!b || (s.modifiedIsNumber ? Number(a) > Number(b) : a > b));
  const later = (a: string, b: string) => (isAfter(b, a) ? b : a);

  /** Users (all, or changed since) and the group index, read before any local change. */
  async function readDirectory(mode: 'full' | 'incremental', since: string | null) {
    return pool.use(
      async (client) => {
        let newestGroup = '';
        if (s.groupBase) {
          const groups = await searchAll(
            client,
            {
              base: s.groupBase,
              filter: since ? changedSince(s.groupFilter, modified, since) : s.groupFilter,
              attributes: [modified],
            },
            config.pageSize,
          );
          for (const group of groups) newestGroup = later(newestGroup, markOf(group));
          // Strictly after: `>=` also matches the change the last run ended with.
          if (mode === 'incremental' && groups.some((g) => isAfter(markOf(g), since!)))
            mode = 'full';
        }
        const filter =
          mode === 'full' ? s.userFilter : changedSince(s.userFilter, modified, since!);
        const entries = await searchAll(
          client,
          {
            base: s.userBase,
            filter,
            attributes: userAttributes(s),
            binary: s.binaryId ? [s.attributes.id] : [],
          },
          config.pageSize,
        );
        const groupsOf = await loadGroupIndex(client, s, config.pageSize);
        return { mode, entries, groupsOf, newestGroup };
      },
      // Many pages, each bounded by LDAP_TIMEOUT_MS. All is read before anything changes here:
      // an outage midway fails the whole run, and never disables the users not yet listed.
      { unbounded: true },
    );
  }

  async function run(trx: Knex.Transaction, options: SyncOptions) {
    const state: SyncState | undefined = await trx('directory_sync')
      .where({ id: STATE_ID })
      .first();
    const read = await readDirectory(chooseMode(state, options, config), state?.high_water ?? null);
    const summary: SyncSummary = {
      mode: read.mode,
      dryRun: Boolean(options.dryRun),
      created: 0,
      updated: 0,
      disabled: 0,
      errors: 0,
      problems: [],
      changes: [],
    };
    const toSignOut: string[] = [];
    const toEndReplaced: { replaced: string; userId: string }[] = [];
    const seen = new Set<string>();
    let highWater = later(state?.high_water ?? '', read.newestGroup);

    const record = (action: string, directoryId: string, dn: string | null) =>
      summary.changes.push({ action, directoryId, dn });

    for (const entry of read.entries) {
      try {
        const user = toDirectoryUser(entry, s);
        seen.add(user.id);
        highWater = later(highWater, user.modified ?? '');
        const plan = planLink(
          await findLinked(trx, user.id),
          user,
          rolesOf(read.groupsOf(user), s.groupRoles),
          config.emailVerified,
        );
        if (plan.action === 'skip' || plan.action === 'unchanged') continue;
        // A savepoint each: one entry's conflict must not undo the others.
        const { user: linked, replaced } = await applyLink(trx, plan);
        if (replaced) toEndReplaced.push({ replaced, userId: linked!.id });
        if (plan.action === 'create') summary.created++;
        else if (plan.action === 'disable') summary.disabled++;
        else summary.updated++;
        if (plan.action === 'disable') toSignOut.push(plan.user.id);
        record(plan.action, user.id, user.dn);
      } catch (err) {
        // The entry still counts as present: a missing email must not disable its account.
        try {
          seen.add(stableId(entry, s));
        } catch {
          // no id either: nothing links it to an account
        }
        summary.errors++;
        summary.problems.push(`${entry.dn}: ${(err as Error).message}`);
      }
    }

    if (summary.mode === 'full') {
      const unseen = await unseenLinked(trx, seen);
      if (seen.size === 0 && (await countActiveLinked(trx)) > 0) {
        // A wrong base or filter lists nobody; that is not everyone leaving at once.
        summary.errors++;
        summary.problems.push(`the directory listed no users: ${unseen.length} accounts kept`);
      } else {
        for (const user of unseen) {
          await markMissing(trx, user);
          summary.disabled++;
          toSignOut.push(user.id);
          record('missing', user.directory_id!, user.directory_dn);
        }
      }
    }

    if (options.dryRun) throw new DryRunDone(summary);
    await trx('directory_sync')
      .insert({
        id: STATE_ID,
        high_water: highWater || null,
        last_run_at: trx.fn.now(),
        last_full_at: summary.mode === 'full' ? trx.fn.now() : (state?.last_full_at ?? null),
      })
      .onConflict('id')
      .merge();
    return { summary, toSignOut, toEndReplaced };
  }

  return async function sync(options: SyncOptions = {}): Promise<SyncSummary | undefined> {
    const actor = options.actor ?? { type: 'system' as const };
    // A real run's end is the directory's status (GET /directory); a dry run changes nothing.
    const remember = async (ended: Parameters<typeof recordSyncRun>[2]) => {
      if (options.dryRun) return;
      await recordSyncRun(db, actor, ended).catch((err: Error) =>
        log.warn({ error: err.message }, 'directory sync report not stored'),
      );
    };
    let outcome: Awaited<ReturnType<typeof run>> | undefined;
    try {
      outcome = await withAdvisoryLock(db, LOCK, (trx) => run(trx, options));
    } catch (err) {
      if (!(err instanceof DryRunDone)) {
        // The sync's own error is the one to tell (PostgreSQL down fails the record too).
        await audit({
          type: 'directory_sync',
          outcome: 'failure',
          actor,
          detail: { error: (err as Error).message },
        }).catch(() => undefined);
        await remember({ error: err as Error });
        throw err;
      }
      outcome = { summary: err.summary, toSignOut: [], toEndReplaced: [] };
    }
    if (!outcome) return undefined;
    const { summary, toSignOut, toEndReplaced } = outcome;
    // After the commit: the accounts are already disabled, and the provider refuses disabled
    // accounts, so no token is issued meanwhile and a failure here is reported, not fatal.
    for (const { replaced, userId } of toEndReplaced) {
      try {
        await endReplaced(replaced, userId, { signOut, audit });
      } catch (err) {
        summary.errors++;
        summary.problems.push(`signing out ${replaced}: ${(err as Error).message}`);
      }
    }
    for (const id of toSignOut) {
      try {
        await signOutDisabled(id, { signOut, audit });
      } catch (err) {
        summary.errors++;
        summary.problems.push(`signing out ${id}: ${(err as Error).message}`);
      }
    }
    const { mode, dryRun, created, updated, disabled, errors } = summary;
    const counts = { mode, dryRun, created, updated, disabled, errors };
    await audit({
      type: 'directory_sync',
      outcome: errors ? 'failure' : 'success',
      actor,
      detail: counts,
    });
    await remember({ summary });
    log[errors ? 'warn' : 'info'](
      { ...counts, problems: summary.problems.slice(0, 20) },
      'directory sync finished',
    );
    return summary;
  };
}
