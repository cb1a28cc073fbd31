import type { LdapConfig } from '../../config/ldap.ts';
import type { AccountSignOut } from '../users/sign-out.ts';
import type { User } from '../users/store.ts';
import type { Audit } from '../audit/audit.ts';
import type { Db } from '../db.ts';
import type { Logger } from '../log.ts';
import { NO_METRICS, type Metrics } from '../metrics/metrics.ts';
import {
  createDirectorySignIn,
  findAndBind,
  linkedAccountOf,
  type SignInResult,
} from './authenticate.ts';
import { createDirectoryGuard } from './breaker.ts';
import { closeConnection, openConnection, type Connection } from './connection.ts';
import type { DirectoryUser } from './entries.ts';
import { matchingAny } from './filters.ts';
import { rolesOf } from './groups.ts';
import { createConnectionPool } from './pool.ts';
import { directorySettings, type DirectorySettings } from './presets.ts';
import { NO_ATTRIBUTES, searchFew } from './search.ts';
import { createDirectorySync, type SyncOptions } from './sync.ts';
import type { SyncSummary } from './sync-summary.ts';

export type DirectoryDeps = {
  /** config.ldap: present when LDAP_URL is set. */
  config: LdapConfig;
  db: Db;
  log: Logger;
  audit: Audit;
  /** Signs out accounts the directory disables or removes. */
  signOut: AccountSignOut;
  metrics?: Metrics | undefined;
};

export type Directory = {
  settings: DirectorySettings;
  /** Sign-in with a directory username or email; creates or updates the local user. */
  authenticate(login: string, password: string): Promise<SignInResult>;
  /** The local account linked to the entry a login names, looked up without a password. */
  accountOf(login: string): Promise<User | undefined>;
  /**
   * Whether an entry of the user base has this email address (enabled or not): the directory
   * manages that address. Undefined without a service account to search with; connection
   * failures are thrown.
   */
  hasEmail(email: string): Promise<boolean | undefined>;
  /** Readiness: the directory answers (bound as the service account when there is one). */
  check(): Promise<void>;
  /** Whether it can sync: that needs a service account (LDAP_BIND_DN) to list users with. */
  canSync: boolean;
  /** Undefined when another process is syncing. */
  sync(options?: SyncOptions): Promise<SyncSummary | undefined>;
  /** Binds as the login and maps it, changing nothing here (`latchkey ldap test`). */
  inspect(
    login: string,
    password: string,
  ): Promise<{ user: DirectoryUser; groups: string[]; roles: string[] } | undefined>;
  close(): void;
};

/** The root DSE (RFC 4512 §5.1): every server answers it, to anyone. */
async function readRootDse(client: Connection): Promise<void> {
  await client.search('', {
    scope: 'base',
    filter: '(objectClass=*)',
    attributes: ['supportedLDAPVersion'],
  });
}

/** The LDAP / Active Directory connection of one process. Throws on a malformed filter or group DN. */
export function createDirectory(deps: DirectoryDeps): Directory {
  const { config, metrics = NO_METRICS } = deps;
  const settings = directorySettings(config);
  const bind = config.bind;
  const guard = createDirectoryGuard(config, deps.log);
  const pool = bind
    ? createConnectionPool({
        open: (signal) => openConnection(config, bind, signal),
        size: config.poolSize,
        guard,
      })
    : undefined;
  const shared = { ...deps, settings, pool, guard };
  const sync = pool ? createDirectorySync({ ...shared, pool }) : undefined;
  const signIn = createDirectorySignIn(shared);
  // The last commit of any process's sync: the state row every process shares.
  if (sync)
    metrics.onScrape(async () => {
      const state = await deps
        .db('directory_sync')
        .whereNotNull('last_run_at')
        .first('last_run_at');
      if (state) metrics.directoryLastSync.set({}, new Date(state.last_run_at).getTime() / 1000);
    });

  return {
    settings,
    async authenticate(login, password) {
      const result = await signIn(login, password);
      metrics.directoryBinds.inc({ outcome: result.ok ? 'success' : result.reason });
      return result;
    },
    accountOf: (login) => linkedAccountOf(shared, login),
    async hasEmail(email) {
      if (!pool) return undefined;
      const entries = await pool.use((client) =>
        searchFew(
          client,
          {
            base: settings.userBase,
            filter: matchingAny(settings.userFilter, settings.attributes.email, email.trim()),
            attributes: NO_ATTRIBUTES,
          },
          1,
        ),
      );
      return entries.length > 0;
    },
    /** Through the guard too: fails at once while the directory is left alone, or probes it. */
    async check() {
      if (pool) return pool.use(readRootDse);
      await guard(async (signal) => {
        const client = await openConnection(config, undefined, signal);
        try {
          await readRootDse(client);
        } finally {
          closeConnection(client);
        }
      });
    },
    canSync: Boolean(sync),
    async sync(options) {
      if (!sync) throw new Error('directory sync needs a service account (LDAP_BIND_DN)');
      let summary: SyncSummary | undefined;
      try {
        summary = await sync(options);
      } catch (err) {
        if (!options?.dryRun) metrics.directorySyncs.inc({ outcome: 'failure' });
        throw err;
      }
      if (summary && !summary.dryRun) {
        metrics.directorySyncs.inc({ outcome: summary.errors ? 'failure' : 'success' });
        for (const change of ['created', 'updated', 'disabled'] as const)
          metrics.directorySyncEntries.inc({ change }, summary[change]);
      }
      return summary;
    },
    async inspect(login, password) {
      const found = await findAndBind(shared, login.trim(), password);
      if (!found) return undefined;
      return {
        user: found.user,
        groups: [...found.groups].sort(),
        roles: rolesOf(found.groups, settings.groupRoles),
      };
    },
    close: () => pool?.close(),
  };
}

/**
 * A sync an admin asks for (CLI `ldap sync`, the admin API): a full one, which also notices
 * entries deleted from the directory. Undefined when another process is syncing.
 */
export function requestedSync(
  directory: Pick<Directory, 'sync'>,
  { dryRun, actor }: { dryRun: boolean; actor: NonNullable<SyncOptions['actor']> },
): Promise<SyncSummary | undefined> {
  return directory.sync({ dryRun, full: true, actor });
}

/**
 * Runs a sync every LDAP_SYNC_INTERVAL_SECONDS (incremental, full when the last full one is
 * older than LDAP_FULL_SYNC_INTERVAL_SECONDS). Of several processes (WORKERS, replicas) one
 * runs it at a time, and one that finds a run ended within half the interval leaves it.
 */
export function startDirectorySync({
  directory,
  config,
  log,
}: {
  directory: Pick<Directory, 'sync'>;
  config: Pick<LdapConfig, 'syncIntervalSeconds' | 'bind'>;
  log: Logger;
}): { stop(): Promise<void> } {
  if (config.syncIntervalSeconds <= 0 || !config.bind) return { stop: async () => undefined };
  let running: Promise<unknown> | undefined;
  const timer = setInterval(() => {
    running ??= directory
      .sync({ unlessRanWithinSeconds: config.syncIntervalSeconds / 2 })
      .catch((err: Error) => log.error({ error: err.message }, 'directory sync failed'))
      .finally(() => (running = undefined));
  }, config.syncIntervalSeconds * 1000).unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
