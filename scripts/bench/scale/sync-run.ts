// One directory sync in a process of its own, as the server runs it (its config, database and
// service graph), so its memory is the sync's: `node sync-run.ts full|incremental`, with the
// server's environment. Prints one line of JSON: the time, the summary's counts, the process's
// peak RSS, the peak of the V8 heap sampled every 10 ms, and the peak of the heap that major GCs
// left: what the sync kept alive, rather than the garbage V8 lets pile up between them (up to
// several times the live heap, so the sampled peak grows with a run's length).
import { GCProfiler } from 'node:v8';
import { loadConfig } from '../../../config/load.ts';
import { closeDb, openDb } from '../../../server/db.ts';
import { createLogger } from '../../../server/log.ts';
import { migrate } from '../../../server/migrate.ts';
import { createServices } from '../../../server/services.ts';

const mode = process.argv[2];
if (mode !== 'full' && mode !== 'incremental')
  throw new Error('usage: sync-run.ts full|incremental');
const config = loadConfig(process.env);
const log = createLogger('warn');
const storage = { databaseUrl: config.databaseUrl, dataDir: config.dataDir, log };
const db = await openDb({ ...storage, poolMax: 2, timeoutMs: config.dependencyTimeoutMs });
await migrate(db);
const services = createServices({ config, db, log });
const directory = services.directory;
if (!directory) throw new Error('LDAP_URL is not set');

// With --expose-gc (the benchmark passes it): the heap before is what is alive, not startup's
// garbage.
(globalThis as { gc?: () => void }).gc?.();
const gcs = new GCProfiler();
let peakHeap = process.memoryUsage().heapUsed;
const baseRss = process.memoryUsage().rss;
const sampler = setInterval(() => {
  peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
}, 10);
const heapBefore = process.memoryUsage().heapUsed;
const t0 = performance.now();
gcs.start();
const summary = await directory.sync({
  full: mode === 'full',
  actor: { type: 'admin', id: 'bench' },
});
const ms = performance.now() - t0;
const afterMajorGcs = gcs
  .stop()
  .statistics.filter((gc) => gc.gcType === 'MarkSweepCompact')
  .map((gc) => gc.afterGC.heapStatistics.usedHeapSize);
clearInterval(sampler);
peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
if (!summary) throw new Error('another process is syncing');
const { created, updated, disabled, errors, problems } = summary;
console.log(
  JSON.stringify({
    mode: summary.mode,
    ms,
    created,
    updated,
    disabled,
    errors,
    problems: problems.slice(0, 5),
    baseRssMiB: baseRss / 2 ** 20,
    // resourceUsage().maxRSS is in KiB.
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
    heapBeforeMiB: heapBefore / 2 ** 20,
    peakHeapMiB: peakHeap / 2 ** 20,
    /** Null when no major GC ran during the sync. */
    liveHeapMiB: afterMajorGcs.length ? Math.max(...afterMajorGcs) / 2 ** 20 : null,
    majorGcs: afterMajorGcs.length,
  }),
);
await services.close();
await closeDb(db);
