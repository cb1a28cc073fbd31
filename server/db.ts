import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import knexFactory, { type Knex } from 'knex';
import type { Logger } from './log.ts';

export type Db = Knex;

export type DbOptions = {
  databaseUrl: string | undefined;
  dataDir: string;
  poolMax: number;
  /**
   * PostgreSQL only: connecting, waiting for a pooled connection and each query end by then, on
   * both sides (see serverTimeouts).
   */
  timeoutMs?: number | undefined;
  /** Where knex's own warnings go (a lost connection, a failed acquire); else the console. */
  log?: Logger | undefined;
};

/**
 * PostgreSQL when a URL is given, else PGlite (Postgres in WASM) kept in dataDir/pglite. PGlite
 * is loaded only then: with PostgreSQL its modules would be ~1 MiB of idle heap.
 */
export async function openDb({
  databaseUrl,
  dataDir,
  poolMax,
  timeoutMs,
  log,
}: DbOptions): Promise<Db> {
  if (databaseUrl) {
    return knexFactory({
      client: 'pg',
      connection: timeoutMs
        ? {
            connectionString: databaseUrl,
            connectionTimeoutMillis: timeoutMs,
            query_timeout: timeoutMs,
            ...serverTimeouts(timeoutMs),
          }
        : databaseUrl,
      pool: { min: 0, max: poolMax },
      ...(timeoutMs && { acquireConnectionTimeout: timeoutMs }),
      ...(log && {
        log: {
          warn: (message: unknown) => log.warn({ error: String(message) }, 'database'),
          error: (message: unknown) => log.error({ error: String(message) }, 'database'),
          deprecate: (message: unknown) => log.warn({ error: String(message) }, 'database'),
          debug: () => undefined,
        },
      }),
    });
  }
  const filename = join(dataDir, 'pglite');
  mkdirSync(filename, { recursive: true });
  const [{ PGlite }, { default: ClientPgLite }] = await Promise.all([
    import('@electric-sql/pglite'),
    import('knex-pglite'),
  ]);
  const release = claimEmbedded(join(dataDir, 'pglite.pid'));
  const pglite = new PGlite(filename, { postgresqlconf: EMBEDDED_SETTINGS });
  // knex-pglite takes an instance of ours in `connection` (its types do not say so).
  const connection = { pglite } as unknown as Knex.StaticConnectionConfig;
  const db = knexFactory({ client: ClientPgLite, dialect: 'postgres', connection });
  releases.set(db, release);
  embedded.add(db);
  return db;
}

/**
 * PostgreSQL's 128 MB of shared buffers would all live in the server's own memory with PGlite
 * (its WASM heap), and they fill as tables are read: peak RSS 323 MiB against 188 MiB at 16 MB,
 * measured opening a data folder and writing 20,000 rows. The files are read through the
 * operating system's cache anyway, and the hot state is in memory (adapters/write-behind.ts).
 */
const EMBEDDED_SETTINGS = ['shared_buffers = 16MB'];

/**
 * The client's query_timeout only stops waiting: the statement runs on, and may commit after
 * the request was answered 503 (its change then stands, unreported). PostgreSQL itself must end
 * it. Each statement is cancelled a little before the client would give up, so that the error
 * the client gets is PostgreSQL's (57014, an outage: 503), given once the statement is gone;
 * what is left is a reply lost on the way, which no timeout can rule out. A transaction idle as
 * long (a request's transactions wait on nothing but PostgreSQL) was abandoned by its process:
 * it is ended, its locks released. Background jobs that wait on other work inside their
 * transaction lift that limit (locks.ts).
 */
export function serverTimeouts(timeoutMs: number) {
  return {
    statement_timeout: Math.max(1, timeoutMs - Math.min(200, Math.floor(timeoutMs / 10))),
    idle_in_transaction_session_timeout: timeoutMs,
  };
}

const releases = new WeakMap<Db, () => void>();
/** The databases openDb made on PGlite. */
const embedded = new WeakSet<Db>();

/** Closes the pool and, for PGlite, hands the data folder back so another process may open it. */
export async function closeDb(db: Db): Promise<void> {
  await db.destroy();
  releases.get(db)?.();
}

/**
 * PGlite is one process's database: a second process opening the same folder would corrupt it.
 * A pid file names the owner (pid and start time); another live owner is refused with what to
 * do instead.
 */
function claimEmbedded(pidFile: string): () => void {
  let owner = '';
  try {
    owner = readFileSync(pidFile, 'utf8').trim();
  } catch {
    // no owner yet
  }
  const [pid, started] = owner.split(' ');
  if (pid && Number(pid) !== process.pid && isRunning(Number(pid), started))
    throw new Error(
      `The embedded database (${pidFile.replace(/pglite\.pid$/, 'pglite')}) is in use by process ${pid}. ` +
        'Stop that process first, or set DATABASE_URL so several processes share a PostgreSQL server.',
    );
  writeFileSync(pidFile, `${process.pid} ${startTime(process.pid) ?? ''}`.trim());
  return () => rmSync(pidFile, { force: true });
}

/**
 * When the process started (Linux: /proc/<pid>/stat field 22), or undefined. A pid alone is
 * not enough: after a restart, in a container above all, another process may have the old pid.
 */
export function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Whether the process that wrote the pid file still runs (the same pid and start time). */
function isRunning(pid: number, started: string | undefined): boolean {
  const now = startTime(pid);
  if (now !== undefined && started) return now === started;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function isPglite(db: Db): boolean {
  return embedded.has(db);
}

/** Rows an update or delete touched (one helper with the adapters'). */
export { rowsAffected as affected } from '../adapters/postgres.ts';
