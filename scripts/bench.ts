// `npm run bench`: measures the built server (dist/) as a child process on embedded storage
// (PGlite) and on PostgreSQL + Redis, against a bare oidc-provider of the same version (its
// in-memory and its example's Redis adapter) measured in the same run, and prints a markdown
// report to stdout (progress goes to stderr). Exits non-zero when a server fails or any response
// or flow is not a success.
// BENCH_CPU_PROF=<dir> runs each server with --cpu-prof and leaves the profiles in <dir>;
// BENCH_LOG_LEVEL=debug keeps a log line (with its duration) for every request.
// `--scale` runs only the scale measurements (scripts/bench/scale/).
// `--observability` runs only the rows that price metrics and tracing (scripts/bench/observability.ts).
// `--workers` runs only WORKERS=1 against 2 (scripts/bench/workers.ts).
// First, as in the server: the argon2 ceiling is measured on a thread pool sized like the server's.
import '../server/thread-pool.ts';
import { benchComparison } from './bench/compare.ts';
import { fmt } from './bench/format.ts';
import { argon2Verifies } from './bench/load.ts';
import { benchObservability, observabilityReport } from './bench/observability.ts';
import { ARGON2, ARGON2_CONCURRENCY, ARGON2_VERIFIES, type Results } from './bench/plan.ts';
import { withCleanup } from './bench/process.ts';
import { report } from './bench/report.ts';
import { benchScale } from './bench/scale/main.ts';
import {
  benchWorkers,
  workersFailures,
  workersReport,
  type WorkersResult,
} from './bench/workers.ts';

const note = (line: string) => console.error(`bench: ${line}`);

let workers: WorkersResult | undefined;
const benchOneAndTwoWorkers = () =>
  withCleanup(async (cleanup) => void (workers = await benchWorkers(cleanup, note)));

/** A mode: what it measures into `results`, and the report sections it prints. */
type Mode = {
  run(results: Results): Promise<void>;
  report(results: Results, elapsedMs: number): string[];
};

const MODES: Record<string, Mode> = {
  default: {
    async run(results) {
      for (const concurrency of ARGON2_CONCURRENCY) {
        const m = await argon2Verifies(ARGON2_VERIFIES * concurrency, concurrency, ARGON2);
        note(`argon2, ${concurrency} at a time: ${fmt(m.perSecond, 1)} verifies/s`);
        results.argon2.push(m);
      }
      await withCleanup((cleanup) => benchComparison(results, cleanup, note));
      await withCleanup((cleanup) => benchObservability(results, cleanup, note));
      await benchOneAndTwoWorkers();
    },
    report: (results, elapsedMs) => [
      report(results, elapsedMs),
      ...observabilityReport(results),
      ...workersReport(workers),
    ],
  },
  '--workers': {
    run: benchOneAndTwoWorkers,
    report: (_results, elapsedMs) => [
      `Wall time: ${fmt(elapsedMs / 1000)} s.`,
      ...workersReport(workers),
    ],
  },
  '--observability': {
    run: (results) => withCleanup((cleanup) => benchObservability(results, cleanup, note)),
    report: (results, elapsedMs) => [
      `Wall time: ${fmt(elapsedMs / 1000)} s.`,
      ...observabilityReport(results),
    ],
  },
};

async function main(): Promise<number> {
  const started = performance.now();
  const mode = MODES[process.argv.slice(2).find((arg) => arg in MODES) ?? 'default']!;
  const results: Results = {
    argon2: [],
    endpoints: [],
    flows: [],
    pg: [],
    rss: [],
    responsiveness: [],
    serverLogs: [],
    observability: [],
  };
  let fatal: Error | undefined;
  try {
    await mode.run(results);
  } catch (err) {
    fatal = err as Error;
  }
  console.log(mode.report(results, performance.now() - started).join('\n'));
  const failures = [...failureLines(results), ...workersFailures(workers)];
  if (fatal) failures.push(`FAILED: ${fatal.stack ?? fatal.message}`);
  if (failures.length) console.log(`\n${failures.join('\n')}`);
  return failures.length ? 1 : 0;
}

function failureLines(results: Results): string[] {
  const runs = [
    ...[...results.endpoints, ...results.flows].map((r) => ({
      what: `${r.server} ${r.name} at ${r.measurement.concurrency}`,
      m: r.measurement,
    })),
    ...results.argon2.map((m) => ({ what: `argon2 at ${m.concurrency}`, m })),
    ...results.responsiveness.map((r) => ({
      what: `${r.storage} registrations at ${r.registrations.concurrency}`,
      m: r.registrations,
    })),
    ...results.observability.map((r) => ({
      what: `client_credentials with ${r.variant}`,
      m: r.measurement,
    })),
  ];
  return runs
    .filter(({ m }) => m.failed > 0)
    .map(({ what, m }) => `FAILED: ${what}: ${m.failed} failures; first: ${m.firstFailure}`);
}

// `--scale`: the scale runs only (scripts/bench/scale/main.ts).
process.exitCode = process.argv.includes('--scale') ? await benchScale() : await main();
