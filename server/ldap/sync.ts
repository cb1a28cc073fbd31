import type { Knex } from 'knex';
import type { Entry } from 'ldapts';
import type { LdapConfig } from '../../config/ldap.ts';
import type { AccountSignOut } from '../users/sign-out.ts';
import type { Audit, AuditEvent } from '../audit/audit.ts';
import type { Db } from '../db.ts';
import { withAdvisoryLock } from '../locks.ts';
import type { Logger } from '../log.ts';
import type { Connection } from './connection.ts';
import { firstValue, userAttributes } from './entries.ts';
import { changedSince } from './filters.ts';
import {
  countActiveLinked,
  endReplaced,
  markUnseenMissing,
  seenTable,
  signOutDisabled,
} from './linked-users.ts';
import { syncMemberships } from './memberships.ts';
import type { ConnectionPool } from './pool.ts';
import type { DirectorySettings } from './presets.ts';
import { searchPages } from './search.ts';
import { applyPage, type RunWork } from './sync-page.ts';
import { recordSyncRun } from './sync-report.ts';
import { emptySummary, listChange, listProblem, type SyncSummary } from './sync-summary.ts';

export type SyncOptions = {
  dryRun?: boolean;
  /** List every user (notices deleted entries); otherwise incremental when a full run is recent. */
  full?: boolean;
  /** Who asked, for the audit trail: the scheduler (system) or an admin at the CLI. */
  actor?: AuditEvent['actor'];
  /**
   * The scheduler's: nothing is done (undefined) when a run ended less than this long ago, as
   * another process's does when every worker has the schedule.
   */
  unlessRanWithinSeconds?: number;
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

type SyncState = {
  high_water: string | null;
  last_full_at: Date | null;
  last_run_at: Date | null;
};

const ranWithin = (state: SyncState | undefined, seconds: number | undefined) =>
  seconds !== undefined &&
  state?.last_run_at != null &&
  Date.now() - new Date(state.last_run_at).getTime() < seconds * 1000;

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
  const pageContext = { settings: s, emailVerified: config.emailVerified, later };

  /** Which mode the run takes, and the newest group change. */
  async function readGroups(
    client: Connection,
    mode: 'full' | 'incremental',
    since: string | null,
  ) {
    let newestGroup = '';
    if (s.groupBase) {
      const groups = searchPages(
        client,
        {
          base: s.groupBase,
          filter: since ? changedSince(s.groupFilter, modified, since) : s.groupFilter,
          attributes: [modified],
        },
        config.pageSize,
      );
      for await (const page of groups)
        for (const group of page) newestGroup = later(newestGroup, markOf(group));
      // Strictly after: `>=` also matches the change the last run ended with.
      if (mode === 'incremental' && isAfter(newestGroup, since!)) mode = 'full';
    }
    return { mode, newestGroup };
  }

  /**
   * Reads the users (all, or changed since) a page at a time and brings each page in line as it
   * comes, so memory holds one page, not the directory. Everything happens in the run's
   * transaction: an outage midway fails the whole run and changes nothing, and never disables
   * the users not yet listed. In a savepoint of its own, so that the pool's one retry on a
   * fresh connection starts again from a clean slate.
   */
  function readAndApply(trx: Knex.Transaction, state: SyncState | undefined, options: SyncOptions) {
    return pool.use(
      (client) =>
        trx.transaction(async (attempt) => {
          const since = state?.high_water ?? null;
          const read = await readGroups(client, chooseMode(state, options, config), since);
          const work: RunWork = {
            summary: emptySummary(read.mode, Boolean(options.dryRun)),
            toSignOut: [],
            toEndReplaced: [],
            seen: await seenTable(attempt),
            highWater: later(since ?? '', read.newestGroup),
            groupsOfPage: await syncMemberships(attempt, client, s, config.pageSize),
          };
          const filter =
            read.mode === 'full' ? s.userFilter : changedSince(s.userFilter, modified, since!);
          const pages = searchPages(
            client,
            {
              base: s.userBase,
              filter,
              attributes: userAttributes(s),
              binary: s.binaryId ? [s.attributes.id] : [],
            },
            config.pageSize,
          );
          for await (const page of pages) await applyPage(attempt, page, work, pageContext);
          return work;
        }),
      // Many pages, each bounded by LDAP_TIMEOUT_MS.
      { unbounded: true },
    );
  }

  async function run(trx: Knex.Transaction, options: SyncOptions) {
    const state: SyncState | undefined = await trx('directory_sync')
      .where({ id: STATE_ID })
      .first();
    if (ranWithin(state, options.unlessRanWithinSeconds)) return undefined;
    const work = await readAndApply(trx, state, options);
    const { summary, toSignOut } = work;
    const highWater = work.highWater;

    if (summary.mode === 'full') {
      const active = work.seen.count === 0 ? await countActiveLinked(trx) : 0;
      if (active > 0) {
        // A wrong base or filter lists nobody; that is not everyone leaving at once.
        listProblem(summary, `the directory listed no users: ${active} accounts kept`);
      } else {
        for (;;) {
          const gone = await markUnseenMissing(trx, work.seen.table, config.pageSize);
          if (!gone.length) break;
          for (const user of gone) {
            summary.disabled++;
            toSignOut.push(user.id);
            listChange(summary, {
              action: 'missing',
              directoryId: user.directory_id!,
              dn: user.directory_dn,
            });
          }
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
    return { summary, toSignOut, toEndReplaced: work.toEndReplaced };
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
        listProblem(summary, `signing out ${replaced}: ${(err as Error).message}`);
      }
    }
    for (const id of toSignOut) {
      try {
        await signOutDisabled(id, { signOut, audit });
      } catch (err) {
        listProblem(summary, `signing out ${id}: ${(err as Error).message}`);
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
