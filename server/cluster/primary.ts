import cluster, { type Worker } from 'node:cluster';
import client from 'prom-client';
import type { Config } from '../../config/load.ts';
import { startBanner } from '../banner.ts';
import type { BootstrapReport } from '../bootstrap.ts';
import type { Logger } from '../log.ts';
import { startMetricsListener, type MetricsListener } from '../metrics/listener.ts';
import { clusterScrape } from './metrics.ts';
import { isReady, type Ready } from './ready.ts';

/** A worker that ran this long had no start-up trouble: one that dies after is replaced at once. */
const STABLE_MS = 30_000;
/** A worker dying sooner is replaced after 1 s, 2 s, 4 s … at most a minute: a crash loop waits. */
const BACKOFF_FIRST_MS = 1000;
const BACKOFF_MAX_MS = 60_000;
/** Beyond SHUTDOWN_TIMEOUT_SECONDS, what a worker gets to close its pools and exit. */
const EXIT_GRACE_MS = 5000;

/**
 * The primary process of WORKERS > 1: forks the workers (node:cluster hands them the connections
 * on PORT in turn), prints the banner once, serves METRICS_PORT with their figures combined,
 * replaces a worker that dies, and on SIGTERM or SIGINT stops them all, each draining its
 * requests as a single process does. Opens no storage and serves no request itself.
 */
export async function runPrimary(config: Config, log: Logger): Promise<void> {
  const registry = config.metrics.port === undefined ? undefined : new client.Registry();
  const restarts = registry
    ? new client.Counter({
        name: 'latchkey_worker_restarts_total',
        help: 'Workers that exited unexpectedly and were started again (WORKERS).',
        registers: [registry],
      })
    : undefined;
  let metricsListener: MetricsListener | undefined;
  if (registry) {
    const scrape = clusterScrape(registry, config.dependencyTimeoutMs);
    metricsListener = await startMetricsListener({
      scrape,
      host: config.metrics.host,
      port: config.metrics.port!,
      log,
    });
    log.info({ url: metricsListener.url }, 'metrics listening');
  }

  const slots = new Map<number, { slot: number; startedAt: number }>();
  const failures: number[] = Array.from({ length: config.workers }, () => 0);
  const pendingRestarts = new Set<NodeJS.Timeout>();
  let stopping = false;

  function fork(slot: number): Worker {
    const worker = cluster.fork();
    slots.set(worker.id, { slot, startedAt: Date.now() });
    worker.once('listening', () =>
      log.info({ worker: worker.process.pid, slot }, 'worker started'),
    );
    return worker;
  }

  /** Forks a worker for each slot; resolves when all serve, fails when one exits first. */
  function startWorkers(slotsToStart: number[]): Promise<Ready[]> {
    return new Promise((resolve, reject) => {
      const pending = new Set<number>();
      const ready: Ready[] = [];
      const done = () => cluster.off('message', onMessage).off('exit', onExit);
      const onMessage = (worker: Worker, message: unknown) => {
        if (!isReady(message) || !pending.delete(worker.id)) return;
        ready.push(message);
        if (pending.size > 0) return;
        done();
        resolve(ready);
      };
      // A worker that cannot start now would not later either: the start fails.
      const onExit = (worker: Worker, code: number | null, signal: string | null) => {
        if (!pending.has(worker.id)) return;
        done();
        for (const other of Object.values(cluster.workers ?? {})) other?.process.kill('SIGTERM');
        reject(
          new Error(`a worker (pid ${worker.process.pid}) exited at start: ${signal ?? code}`),
        );
      };
      cluster.on('message', onMessage).on('exit', onExit);
      for (const slot of slotsToStart) pending.add(fork(slot).id);
    });
  }

  // The first worker migrates and, on first start, creates the admin (and the first signing
  // keys); the others start once it serves, and find all done. Both are under advisory locks
  // too (migrate.ts, keys/manager.ts), so a worker started again later changes nothing.
  const first = await startWorkers([0]);
  const others = await startWorkers(Array.from({ length: config.workers - 1 }, (_, i) => i + 1));
  const all = [...first, ...others];
  const report: BootstrapReport = {
    admin: all.find((r) => r.report.admin)?.report.admin,
    demoClient: all.find((r) => r.report.demoClient)?.report.demoClient,
  };
  console.log(startBanner(config, first[0]!.port, report));

  cluster.on('exit', (worker, code, signal) => {
    const started = slots.get(worker.id)!;
    slots.delete(worker.id);
    if (stopping) return;
    if (Date.now() - started.startedAt >= STABLE_MS) failures[started.slot] = 0;
    const n = failures[started.slot]!++;
    const delayMs = n === 0 ? 0 : Math.min(BACKOFF_FIRST_MS * 2 ** (n - 1), BACKOFF_MAX_MS);
    restarts?.inc();
    log.error(
      { worker: worker.process.pid, slot: started.slot, code, signal, restartInMs: delayMs },
      'worker exited unexpectedly; starting another',
    );
    const timer = setTimeout(() => {
      pendingRestarts.delete(timer);
      fork(started.slot);
    }, delayMs);
    pendingRestarts.add(timer);
  });

  async function stop(signal: NodeJS.Signals) {
    log.info({ signal }, 'shutting down');
    stopping = true;
    for (const timer of pendingRestarts) clearTimeout(timer);
    const workers = Object.values(cluster.workers ?? {}).filter((w) => w !== undefined);
    const exits = workers.map(
      (w) =>
        new Promise<number | null>((resolve) =>
          w.isDead() ? resolve(w.process.exitCode) : w.once('exit', (code) => resolve(code)),
        ),
    );
    // Each worker drains as a single process does; one that hangs is killed after its time.
    for (const w of workers) w.process.kill('SIGTERM');
    const killer = setTimeout(
      () => workers.forEach((w) => w.process.kill('SIGKILL')),
      config.shutdownTimeoutSeconds * 1000 + EXIT_GRACE_MS,
    );
    const codes = await Promise.all(exits);
    clearTimeout(killer);
    await metricsListener?.close();
    process.exit(codes.every((code) => code === 0) ? 0 : 1);
  }
  for (const signal of ['SIGTERM', 'SIGINT'] as const)
    process.once(signal, () => void stop(signal));
}
