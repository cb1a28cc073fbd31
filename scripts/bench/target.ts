// The server under test: its storage (a PGlite folder, or throwaway PostgreSQL + Redis), the
// clients and user made through the CLI, and the built server running as a child process.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort, startPostgres, startRedis } from '../../test/support/services.ts';
import { ROOT, startServerProcess, type Cleanup, type ServerProcess } from './process.ts';

export type Storage = 'embedded' | 'postgres+redis';
export type Client = { id: string; secret: string };

/** How `npm start` (package.json) and the container image (Dockerfile) run the server. */
export const LATCHKEY_NODE_FLAGS = ['--experimental-async-context-frame'];

export const API = 'https://api.bench.test';
export const REDIRECT_URI = 'http://rp.bench.test/callback';
export const USER = { email: 'bench@example.test', password: 'bench-password-0123456789' };

const run = promisify(execFile);

/** Counters of the server's database: rows inserted/updated/deleted and transactions. */
export type PgCounters = { rowsWritten: number; transactions: number };

export type Target = ServerProcess & {
  storage: Storage;
  url: string;
  /** Confidential code-flow client with REDIRECT_URI. */
  web: Client;
  /** Confidential client_credentials client. */
  service: Client;
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
    // One client makes every token request: its per-client limit is off, as in the issue's
    // measurement (it costs about 6% of client_credentials' server CPU).
    RATE_LIMIT_TOKEN_CLIENT: 'off',
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

/** The built server; LOG_LEVEL=warn, so it prints warnings and errors only. */
function startServer(env: Record<string, string>, url: string, cleanup: Cleanup) {
  return startServerProcess(
    'dist/server/main.js',
    env,
    `${url}/readyz`,
    cleanup,
    // BENCH_NODE_ARGS in a server's environment: Node/V8 options for it (the memory probe's A/B).
    [...LATCHKEY_NODE_FLAGS, ...(env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? [])],
  );
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
