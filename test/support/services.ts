// Throwaway PostgreSQL and Redis servers on free loopback ports, in temp folders removed after
// the run, so tests never depend on or touch services already running on the machine.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type Service = { url: string; stop(): Promise<void> };

/** A service a test can take down (`down()`, abruptly) and bring back on the same port (`up()`). */
export type RestartableService = Service & { down(): Promise<void>; up(): Promise<void> };

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export async function waitForPort(port: number, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => (socket.end(), resolve(true)));
      socket.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listening on 127.0.0.1:${port} after ${timeoutMs} ms`);
}

/** SIGTERM, and wait for the exit, unless the process has already gone. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

export function postgresBinDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).sort((a, b) => Number(b) - Number(a)) : [];
  for (const v of versions)
    if (existsSync(join(root, v, 'bin', 'initdb'))) return join(root, v, 'bin');
  throw new Error('PostgreSQL server binaries not found: apt-get install postgresql');
}

/** PostgreSQL refuses to run as root; on CI we are root, so run it as the `postgres` user. */
function asPostgresUser(cmd: string, args: string[]): [string, string[]] {
  return process.getuid?.() === 0
    ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]]
    : [cmd, args];
}

export async function startPostgres(): Promise<RestartableService> {
  const bin = postgresBinDir();
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-pg-'));
  chmodSync(dir, 0o700);
  if (process.getuid?.() === 0) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString());
    chownSync(dir, uid, gid);
  }
  const port = await freePort();
  const data = join(dir, 'data');
  execFileSync(
    ...asPostgresUser(join(bin, 'initdb'), [
      '-D',
      data,
      '-U',
      'postgres',
      '--auth=trust',
      '-E',
      'UTF8',
      '--no-sync',
    ]),
    { stdio: 'ignore' },
  );
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300`;
  const pgCtl = (args: string[]) =>
    void execFileSync(...asPostgresUser(join(bin, 'pg_ctl'), ['-D', data, ...args]), {
      stdio: 'ignore',
    });
  const up = async () => pgCtl(['-o', options, '-l', join(dir, 'log'), '-w', 'start']);
  await up();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    up,
    // Connections are cut; what was committed survives (the test server runs with
    // synchronous_commit=off, which an immediate stop could lose).
    down: async () => pgCtl(['-m', 'fast', '-w', 'stop']),
    async stop() {
      try {
        pgCtl(['-m', 'immediate', '-w', 'stop']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

/**
 * A throwaway Redis. With `appendonly`, what it held survives `down()` and `up()` on the same port,
 * as an operator's Redis with `appendonly yes` would.
 */
export async function startRedis({ appendonly = false } = {}): Promise<RestartableService> {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-redis-'));
  const port = await freePort();
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    appendonly ? 'yes' : 'no',
    '--appendfsync',
    'always',
    '--databases',
    '256',
    '--dir',
    dir,
  ];
  let child: ChildProcess | undefined;
  const up = async () => {
    child = spawn('redis-server', args, { stdio: 'ignore' });
    await waitForPort(port);
  };
  await up();
  return {
    url: `redis://127.0.0.1:${port}`,
    up,
    async down() {
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child!.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (child) await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A Redis Sentinel (redis-server --sentinel) watching the master on `masterPort` as "mymaster". */
export async function startSentinel(masterPort: number): Promise<Service & { port: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-sentinel-'));
  const port = await freePort();
  const conf = join(dir, 'sentinel.conf');
  // Sentinel rewrites its configuration file, so it gets one of its own in a temp folder.
  writeFileSync(
    conf,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      `sentinel monitor mymaster 127.0.0.1 ${masterPort} 1`,
    ].join('\n') + '\n',
  );
  const child = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
  await waitForPort(port);
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A three-master Redis Cluster on free loopback ports, slots assigned by redis-cli. */
export async function startRedisCluster(): Promise<{ nodes: string[]; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-cluster-'));
  const ports = [await freePort(), await freePort(), await freePort()];
  const children = ports.map((port) =>
    spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        `nodes-${port}.conf`,
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        dir,
      ],
      { stdio: 'ignore' },
    ),
  );
  for (const port of ports) await waitForPort(port);
  const nodes = ports.map((port) => `127.0.0.1:${port}`);
  execFileSync(
    'redis-cli',
    ['--cluster', 'create', ...nodes, '--cluster-replicas', '0', '--cluster-yes'],
    { stdio: 'ignore' },
  );
  for (const port of ports) {
    const deadline = Date.now() + 20_000;
    while (
      !execFileSync('redis-cli', ['-p', String(port), 'cluster', 'info'])
        .toString()
        .includes('cluster_state:ok')
    ) {
      if (Date.now() > deadline) throw new Error(`cluster node ${port} not ready`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    nodes,
    async stop() {
      await Promise.all(
        children.map((child) => {
          return stopChild(child);
        }),
      );
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
