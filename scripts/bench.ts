// `npm run bench`: measures the built server (dist/) as a child process on embedded storage
// (PGlite) and on PostgreSQL + Redis, and prints a markdown report to stdout (progress goes to
// stderr). Exits non-zero when the server fails or any response or flow is not a success.
// BENCH_CPU_PROF=<dir> runs each server with --cpu-prof and leaves the profiles in <dir>;
// BENCH_LOG_LEVEL=debug keeps a log line (with its duration) for every request.
// `--observability` runs only the rows that price metrics and tracing (scripts/bench/observability.ts).
// `--workers` runs only WORKERS=1 against 2 (scripts/bench/workers.ts).
// First, as in the server: the argon2 ceiling is measured on a thread pool sized like the server's.
import '../server/thread-pool.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { Browser } from './bench/http-client.ts';
import {
  argon2Verifies,
  basicAuth,
  hammer,
  opaqueClientCredentials,
  passwordLoginFlow,
  runJobs,
  sessionFlow,
  type Endpoint,
  type Measurement,
  type RelyingParty,
} from './bench/load.ts';
import { benchObservability, observabilityReport } from './bench/observability.ts';
import {
  API,
  cleanupStack,
  startTarget,
  type Cleanup,
  type Storage,
  type Target,
} from './bench/target.ts';

import {
  STORAGES,
  TOKEN_CONNECTIONS,
  TOKEN_REQUESTS,
  TOKEN_WARMUP,
  FLOW_WORKERS,
  PASSWORD_FLOWS,
  SESSION_FLOWS,
  REGISTRATIONS,
  REGISTRATION_WORKERS,
  FLOW_WARMUP,
  ARGON2_CONCURRENCY,
  ARGON2_VERIFIES,
  ARGON2,
  PG_STATS_SETTLE_MS,
  OPAQUE,
  JWT,
  INTROSPECTION,
  PASSWORD_LOGIN,
  EXISTING_SESSION,
  type PgActivity,
  type Results,
} from './bench/plan.ts';
import { fmt, report } from './bench/report.ts';
import { healthzUnderRegistrations } from './bench/responsiveness.ts';
import {
  benchWorkers,
  workersFailures,
  workersReport,
  type WorkersResult,
} from './bench/workers.ts';

const note = (line: string) => console.error(`bench: ${line}`);

async function main(): Promise<number> {
  const started = performance.now();
  const onlyObservability = process.argv.includes('--observability');
  const onlyWorkers = process.argv.includes('--workers');
  let workers: WorkersResult | undefined;
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
    if (!onlyObservability && !onlyWorkers) {
      for (const concurrency of ARGON2_CONCURRENCY) {
        const m = await argon2Verifies(ARGON2_VERIFIES * concurrency, concurrency, ARGON2);
        note(`argon2, ${concurrency} at a time: ${fmt(m.perSecond, 1)} verifies/s`);
        results.argon2.push(m);
      }
      for (const storage of STORAGES) await benchStorage(storage, results);
    }
    if (!onlyWorkers) await withCleanup((cleanup) => benchObservability(results, cleanup, note));
    if (!onlyObservability)
      await withCleanup(async (cleanup) => void (workers = await benchWorkers(cleanup, note)));
  } catch (err) {
    fatal = err as Error;
  }
  const elapsedMs = performance.now() - started;
  const sections =
    onlyObservability || onlyWorkers
      ? [`Wall time: ${fmt(elapsedMs / 1000)} s.`]
      : [report(results, elapsedMs)];
  console.log([...sections, ...observabilityReport(results), ...workersReport(workers)].join('\n'));
  const failures = [...failureLines(results), ...workersFailures(workers)];
  if (fatal) failures.push(`FAILED: ${fatal.stack ?? fatal.message}`);
  if (failures.length) console.log(`\n${failures.join('\n')}`);
  return failures.length ? 1 : 0;
}

function failureLines(results: Results): string[] {
  const runs = [
    ...[...results.endpoints, ...results.flows].map((r) => ({
      what: `${r.storage} ${r.name} at ${r.measurement.concurrency}`,
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

/** Runs `work` with a cleanup stack that runs when it ends, or on Ctrl-C. */
async function withCleanup(work: (cleanup: Cleanup) => Promise<void>): Promise<void> {
  const cleanup = cleanupStack();
  const stopOnSignal = () => void cleanup.run().then(() => process.exit(130));
  process.once('SIGINT', stopOnSignal).once('SIGTERM', stopOnSignal);
  try {
    await work(cleanup);
  } finally {
    await cleanup.run();
    process.off('SIGINT', stopOnSignal).off('SIGTERM', stopOnSignal);
  }
}

async function benchStorage(storage: Storage, results: Results): Promise<void> {
  let target: Target | undefined;
  await withCleanup(async (cleanup) => {
    try {
      note(`${storage}: starting`);
      target = await startTarget(storage, cleanup);
      // Let the server's start-up queries reach pg_stat before the first reading.
      if (target.readPgCounters) await sleep(PG_STATS_SETTLE_MS);
      await benchTokenEndpoints(target, results);
      await benchFlows(target, results);
      await benchResponsiveness(target, results);
      results.rss.push({ storage, peakMiB: target.peakRssMiB() });
    } finally {
      // The start-up banner is plain text; log lines (warnings and errors here) are JSON.
      const logLines =
        target
          ?.output()
          .split('\n')
          .filter((l) => l.startsWith('{')) ?? [];
      results.serverLogs.push({ storage, lines: logLines });
    }
  });
}

async function benchTokenEndpoints(target: Target, results: Results): Promise<void> {
  for (const [name, endpoint] of Object.entries(await tokenEndpoints(target))) {
    await withPgActivity(target, name, 'request', results, async () => {
      let count = (await hammer(endpoint, 10, TOKEN_WARMUP)).count;
      for (const connections of TOKEN_CONNECTIONS) {
        const measurement = await hammer(endpoint, connections, TOKEN_REQUESTS, target.cpuMs);
        results.endpoints.push({ storage: target.storage, name, measurement });
        note(`${target.storage} ${name}, ${connections} conns: ${fmt(measurement.perSecond)}/s`);
        count += measurement.count;
        target.assertAlive();
      }
      return count;
    });
  }
}

async function tokenEndpoints(target: Target): Promise<Record<string, Endpoint>> {
  const token = `${target.url}/token`;
  const headers = {
    'content-type': 'application/x-www-form-urlencoded',
    authorization: basicAuth(target.service),
  };
  const post = (url: string, body: string, verify: Endpoint['verify']) => ({
    url,
    headers,
    body,
    verify,
  });
  const accessToken = (body: string) =>
    (JSON.parse(body) as { access_token?: string }).access_token;
  const issued = await fetch(token, {
    method: 'POST',
    headers,
    body: 'grant_type=client_credentials',
  });
  const introspected = accessToken(await issued.text());
  if (!introspected) throw new Error(`could not issue the token to introspect: ${issued.status}`);
  const jwtRequest = new URLSearchParams({
    grant_type: 'client_credentials',
    resource: API,
    scope: 'read',
  });
  return {
    [OPAQUE]: opaqueClientCredentials(target.url, target.service),
    [JWT]: post(token, jwtRequest.toString(), (body) => accessToken(body)?.split('.').length === 3),
    [INTROSPECTION]: post(`${token}/introspection`, `token=${introspected}`, (body) =>
      body.includes('"active":true'),
    ),
  };
}

async function benchFlows(target: Target, results: Results): Promise<void> {
  const rp: RelyingParty = { issuer: target.url, client: target.web };
  const record = (name: string, measurement: Measurement) => {
    results.flows.push({ storage: target.storage, name, measurement });
    note(
      `${target.storage} ${name}, ${measurement.concurrency} workers: ${fmt(measurement.perSecond, 1)}/s`,
    );
    target.assertAlive();
    return measurement.count;
  };
  const freshBrowser = async () => () => passwordLoginFlow(rp);
  const signedIn = async () => {
    const browser = new Browser();
    await passwordLoginFlow(rp, browser);
    return () => sessionFlow(rp, browser);
  };

  await withPgActivity(target, PASSWORD_LOGIN, 'flow', results, async () => {
    let count = (await runJobs(FLOW_WARMUP, 4, freshBrowser)).count;
    for (const workers of FLOW_WORKERS)
      count += record(
        PASSWORD_LOGIN,
        await runJobs(PASSWORD_FLOWS, workers, freshBrowser, target.cpuMs),
      );
    return count;
  });
  await withPgActivity(target, EXISTING_SESSION, 'flow', results, async () => {
    // Each worker's sign-in is a password-login flow too.
    let count = FLOW_WORKERS.reduce((sum, workers) => sum + workers, 0);
    for (const workers of FLOW_WORKERS)
      count += record(
        EXISTING_SESSION,
        await runJobs(SESSION_FLOWS, workers, signedIn, target.cpuMs),
      );
    return count;
  });
}

/** /healthz latency, idle and while REGISTRATION_WORKERS registrations run at once. */
async function benchResponsiveness(target: Target, results: Results): Promise<void> {
  const rp: RelyingParty = { issuer: target.url, client: target.web };
  const measured = await healthzUnderRegistrations(
    rp,
    REGISTRATIONS,
    REGISTRATION_WORKERS,
    target.cpuMs,
  );
  results.responsiveness.push({ storage: target.storage, ...measured });
  note(
    `${target.storage} /healthz p99 ${fmt(measured.idle.p99Ms, 1)} ms idle, ${fmt(measured.loaded.p99Ms, 1)} ms under ${REGISTRATION_WORKERS} registrations at once`,
  );
  target.assertAlive();
}

/**
 * Runs `work` (which returns how many requests or flows it made) and, on PostgreSQL, records
 * the rows it wrote and the transactions it ran.
 */
async function withPgActivity(
  target: Target,
  name: string,
  per: PgActivity['per'],
  results: Results,
  work: () => Promise<number>,
): Promise<void> {
  const read = target.readPgCounters;
  if (!read) return void (await work());
  const before = await read();
  const count = await work();
  await sleep(PG_STATS_SETTLE_MS);
  const after = await read();
  results.pg.push({
    name,
    per,
    count,
    rowsWritten: after.rowsWritten - before.rowsWritten,
    // Less the reading's own transaction.
    transactions: Math.max(0, after.transactions - before.transactions - 1),
  });
}

process.exitCode = await main();
