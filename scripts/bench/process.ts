// A server under test as a child process of the benchmark: started, awaited, measured (peak RSS
// and CPU from /proc, so every server is measured alike) and stopped.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const READY_TIMEOUT_MS = 30_000;
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

/** Runs `work` with a cleanup stack that runs when it ends, or on Ctrl-C. */
export async function withCleanup<T>(work: (cleanup: Cleanup) => Promise<T>): Promise<T> {
  const cleanup = cleanupStack();
  const stopOnSignal = () => void cleanup.run().then(() => process.exit(130));
  process.once('SIGINT', stopOnSignal).once('SIGTERM', stopOnSignal);
  try {
    return await work(cleanup);
  } finally {
    await cleanup.run();
    process.off('SIGINT', stopOnSignal).off('SIGTERM', stopOnSignal);
  }
}

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

export type ServerProcess = {
  /** The server's process id. */
  pid: number;
  /** Throws, with the server's output, when the server process has exited. */
  assertAlive(): void;
  /** Peak resident set size of the server process (with WORKERS, its tree) so far (VmHWM). */
  peakRssMiB(): number;
  /** Resident set size of the server process (with WORKERS, its tree) now (VmRSS). */
  rssMiB(): number;
  /** CPU milliseconds the server process (with WORKERS, its tree) has used so far (all threads). */
  cpuMs(): number;
  /** What the server printed. */
  output(): string;
};

/** BENCH_CPU_PROF=<dir> runs the server with --cpu-prof; the profile is written when it stops. */
function profilerArgs(): string[] {
  const dir = process.env.BENCH_CPU_PROF;
  return dir ? ['--cpu-prof', '--cpu-prof-dir', dir] : [];
}

/** Runs `script` (relative to the repository) with this Node until `readyUrl` answers 2xx. */
export async function startServerProcess(
  script: string,
  env: Record<string, string>,
  readyUrl: string,
  cleanup: Cleanup,
  nodeFlags: string[] = [],
): Promise<ServerProcess> {
  const child = spawn(process.execPath, [...nodeFlags, ...profilerArgs(), script], {
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
      throw new Error(`${script} exited (${child.exitCode ?? child.signalCode}):\n${output}`);
  };
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!(await isReady(readyUrl))) {
    assertAlive();
    if (Date.now() > deadline) throw new Error(`${script} not ready in 30 s:\n${output}`);
    await sleep(100);
  }
  return {
    pid: child.pid!,
    assertAlive,
    peakRssMiB: () => treeMiB(child.pid!, 'VmHWM'),
    rssMiB: () => treeMiB(child.pid!, 'VmRSS'),
    cpuMs: () => cpuMs(child.pid!),
    output: () => output,
  };
}

function isReady(url: string): Promise<boolean> {
  return fetch(url).then(
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

/** The process and its descendants (with WORKERS, the primary's workers), as /proc lists them. */
function processTree(pid: number): number[] {
  const pids = [pid];
  for (let i = 0; i < pids.length; i++) {
    try {
      for (const task of readdirSync(`/proc/${pids[i]}/task`)) {
        const children = readFileSync(`/proc/${pids[i]}/task/${task}/children`, 'utf8');
        pids.push(...children.split(' ').filter(Boolean).map(Number));
      }
    } catch {
      // Exited since it was listed.
    }
  }
  return pids;
}

/**
 * A memory figure of /proc/<pid>/status (VmHWM, VmRSS) in MiB, summed over the process tree: for
 * the peak, the tree's peak or a little above it.
 */
function treeMiB(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  let kib = 0;
  for (const member of processTree(pid)) {
    let status: string;
    try {
      status = readFileSync(`/proc/${member}/status`, 'utf8');
    } catch {
      if (member === pid) throw new Error(`no /proc/${pid}/status`);
      continue;
    }
    const value = new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1];
    if (!value && member === pid) throw new Error(`no ${field} in /proc/${pid}/status`);
    kib += Number(value ?? 0);
  }
  return kib / 1024;
}

// USER_HZ, the unit of the times in /proc/stat and /proc/<pid>/stat, is 100 on every mainstream Linux.
export const CLOCK_TICK_MS = 10;

/** CPU of a process tree: each member's own, and that of its children that have exited. */
function cpuMs(pid: number): number {
  let ticks = 0;
  for (const member of processTree(pid)) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${member}/stat`, 'utf8');
    } catch {
      continue;
    }
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15,
    // cutime 16, cstime 17 (children waited for).
    const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
    ticks += [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i]), 0);
  }
  return ticks * CLOCK_TICK_MS;
}
