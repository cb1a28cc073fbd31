// The server under test: its storage (a PGlite folder, or throwaway PostgreSQL + Redis), the
// clients and user made through the CLI, and the built server running as a child process.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort, startPostgres, startRedis } from '../../test/support/services.ts';

export type Storage = 'embedded' | 'postgres+redis';
export type Client = { id: string; secret: string };

export const API = 'https://api.bench.test';
export const REDIRECT_URI = 'http://rp.bench.test/callback';
export const USER = { email: 'bench@example.test', password: 'bench-password-0123456789' };

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const run = promisify(execFile);

const CLEANUP_STEP_TIMEOUT_MS = 20_000;

/** Steps that undo what was started, run newest first, each even when another fails. */
export function cleanupStack() {
  const steps: Array<() => unknown> = [];
  return {
    defer(step: () => unknown) {
      steps.push(step);
    },
    async run() {
      for (let step = steps.pop(); step; step = steps.pop()) {
        try {
          await withTimeout(step(), CLEANUP_STEP_TIMEOUT_MS);
        } catch (err) {
          console.error('bench: cleanup step failed:', err);
        }
      }
    },
  };
}
export type Cleanup = ReturnType<typeof cleanupStack>;

// A cleanup step must not hang the run: the test support's Redis stop() waits forever for an
// 'exit' that already happened when Redis was stopped first (Ctrl-C on the process group).
async function withTimeout(step: unknown, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<void>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  try {
    await Promise.race([step, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

/** Counters of the server's database: rows inserted/updated/deleted and transactions. */
export type PgCounters = { rowsWritten: number; transactions: number };

export type Target = {
  storage: Storage;
  url: string;
  /** Confidential code-flow client with REDIRECT_URI. */
  web: Client;
  /** Confidential client_credentials client. */
  service: Client;
  /** The server's process id. */
  pid: number;
  /** Throws, with the server's output, when the server process has exited. */
  assertAlive(): void;
  /** Peak resident set size of the server process so far (VmHWM). */
  peakRssMiB(): number;
  /** CPU milliseconds the server process has used so far (all threads). */
  cpuMs(): number;
  /** What the server printed (LOG_LEVEL=warn, so warnings and errors only). */
  output(): string;
  /** PostgreSQL storage only. */
  readPgCounters?: () => Promise<PgCounters>;
  /** The server's environment: another server on the same storage starts from it. */
  env: Record<string, string>;
};

export async function startTarget(storage: Storage, cleanup: Cleanup): Promise<Target> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const dataDir = mkdtempSync(join(tmpdir(), 'latchkey-bench-'));
  cleanup.defer(() => rmSync(dataDir, { recursive: true, force: true }));
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    // The test suite's fixed secrets (test/support/server.ts), so nothing is generated on disk.
    SEALING_KEY: Buffer.alloc(32, 7).toString('base64'),
    COOKIE_KEYS: 'test-cookie-key-0123456789abcdefghijklmnop',
    PORT: String(port),
    HOST: '127.0.0.1',
    ISSUER: url,
    DATA_DIR: dataDir,
    LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'warn',
    ADMIN_PASSWORD: 'bench-admin-password',
    DEMO_CLIENT: 'false',
    RESOURCE_SERVERS: JSON.stringify([{ audience: API, scopes: 'read write', format: 'jwt' }]),
    // One client makes every token request: the limit stays on (its cost is measured) but high.
    RATE_LIMIT_TOKEN_CLIENT: '100000000/1m',
    // One user signs in from one address in every flow: the in-flight caps stay on (their cost
    // is measured) but above the flow workers.
    LOGIN_IN_FLIGHT_ACCOUNT: '64',
    LOGIN_IN_FLIGHT_IP: '64',
    // For /healthz under registrations: every registration comes from this one address.
    REGISTRATION_ENABLED: 'true',
    RATE_LIMIT_REGISTER_IP: '100000000/1m',
  };
  let readPgCounters: Target['readPgCounters'];
  if (storage === 'postgres+redis') {
    const postgres = await startPostgres();
    cleanup.defer(() => postgres.stop());
    const redis = await startRedis();
    cleanup.defer(() => redis.stop());
    env.DATABASE_URL = postgres.url;
    env.REDIS_URL = redis.url;
    readPgCounters = await pgCounterReader(postgres.url, cleanup);
  }

  // With PGlite only one process may open the data folder, so the CLI goes first.
  await runCli(env, 'users', 'create', '--email', USER.email, '--password', USER.password);
  const web = await createClient(env, ['--name', 'Bench web', '--redirect-uri', REDIRECT_URI]);
  const service = await createClient(env, [
    '--name',
    'Bench service',
    '--grant-type',
    'client_credentials',
  ]);

  const server = await startServer(env, url, cleanup);
  return { storage, url, web, service, readPgCounters, env, ...server };
}

/**
 * One more server process on the target's storage (PostgreSQL + Redis: PGlite allows one), its
 * environment changed by `extra`; same users and clients, its own port and issuer.
 */
export async function startSibling(
  target: Target,
  extra: Record<string, string>,
  cleanup: Cleanup,
): Promise<Target> {
  if (target.storage === 'embedded') throw new Error('PGlite allows one server process');
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const env = { ...target.env, PORT: String(port), ISSUER: url, ...extra };
  const server = await startServer(env, url, cleanup);
  return { ...target, url, env, ...server };
}

async function runCli(env: Record<string, string>, ...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, ['dist/server/cli/main.js', ...args], {
    cwd: ROOT,
    env,
  });
  return stdout;
}

async function createClient(env: Record<string, string>, args: string[]): Promise<Client> {
  const out = await runCli(env, 'clients', 'create', ...args);
  const id = /client_id: (\S+)/.exec(out)?.[1];
  const secret = /client_secret: (\S+)/.exec(out)?.[1];
  if (!id || !secret) throw new Error(`unexpected output from clients create:\n${out}`);
  return { id, secret };
}

/** BENCH_CPU_PROF=<dir> runs the server with --cpu-prof; the profile is written when it stops. */
function profilerArgs(): string[] {
  const dir = process.env.BENCH_CPU_PROF;
  return dir ? ['--cpu-prof', '--cpu-prof-dir', dir] : [];
}

async function startServer(env: Record<string, string>, url: string, cleanup: Cleanup) {
  // BENCH_NODE_ARGS in a server's environment: Node/V8 options for it (the memory probe's A/B).
  const nodeArgs = env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const child = spawn(process.execPath, [...profilerArgs(), ...nodeArgs, 'dist/server/main.js'], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  cleanup.defer(() => stopProcess(child));
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const assertAlive = () => {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`server exited (${child.exitCode ?? child.signalCode}):\n${output}`);
  };
  const deadline = Date.now() + 30_000;
  while (!(await isReady(url))) {
    assertAlive();
    if (Date.now() > deadline) throw new Error(`server not ready in 30 s:\n${output}`);
    await sleep(100);
  }
  return {
    pid: child.pid!,
    assertAlive,
    peakRssMiB: () => peakRssMiB(child.pid!),
    cpuMs: () => cpuMs(child.pid!),
    output: () => output,
  };
}

function isReady(url: string): Promise<boolean> {
  return fetch(`${url}/readyz`).then(
    async (res) => (await res.arrayBuffer(), res.ok),
    () => false,
  );
}

/** SIGTERM (graceful, so a --cpu-prof profile gets written), SIGKILL if it lingers. */
async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

function peakRssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
  if (!kib) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return Number(kib) / 1024;
}

// USER_HZ, the unit of the times in /proc/stat and /proc/<pid>/stat, is 100 on every mainstream Linux.
export const CLOCK_TICK_MS = 10;

function cpuMs(pid: number): number {
  // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * CLOCK_TICK_MS;
}

async function pgCounterReader(url: string, cleanup: Cleanup) {
  const client = new pg.Client(url);
  await client.connect();
  cleanup.defer(() => client.end());
  return async (): Promise<PgCounters> => {
    // Each statement is its own transaction, so the stats snapshot is fresh every time.
    const { rows } = await client.query<{ rows_written: string; transactions: string }>(
      `SELECT
         (SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables) AS rows_written,
         (SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()) AS transactions`,
    );
    return {
      rowsWritten: Number(rows[0]!.rows_written),
      transactions: Number(rows[0]!.transactions),
    };
  };
}
