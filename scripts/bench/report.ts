// The markdown report printed by `npm run bench`.
import { cpus } from 'node:os';
import {
  CPU_COLUMNS,
  cpuCells,
  fmt,
  measurementCells,
  rate,
  resultCells,
  table,
  times,
} from './format.ts';
import {
  ARGON2,
  FLOW_WORKERS,
  PASSWORD_FLOWS,
  PASSWORD_LOGIN,
  PG_STATS_SETTLE_MS,
  REFERENCE,
  SERVERS,
  SESSION_FLOWS,
  TOKEN_POINTS,
  TOKEN_WARMUP,
  type Results,
  type Run,
} from './plan.ts';
import { fastest, ratioToReference } from './ratios.ts';
import { PROBE_INTERVAL_MS } from './responsiveness.ts';
import { headlineTable, targetRows } from './targets.ts';

/** A run's row: the ratio to its reference after the rate. */
function runCells(runs: Run[], run: Run, rounds: number): string[] {
  const [count, perSecond, ...rest] = resultCells(run.measurement);
  const ratio = ratioToReference(runs, run);
  const isReference = REFERENCE[run.name] === run.server;
  return [
    run.server,
    run.name,
    String(run.measurement.concurrency),
    ...(rounds > 1 ? [String(run.round + 1)] : []),
    count!,
    perSecond!,
    ratio === undefined ? (isReference ? 'reference' : '–') : times(ratio),
    ...rest,
    ...cpuCells(run.measurement),
  ];
}

const RESULT_COLUMNS = ['p50 ms', 'p99 ms', 'failed', ...CPU_COLUMNS];

/**
 * Per flow, the machine's CPU per password login against one argon2 verify's: what the server,
 * its storage, the load generator and the kernel spend around the verify.
 */
function passwordLoginCpu(results: Results): string[][] {
  const ceiling = [...results.argon2].sort((a, b) => b.perSecond - a.perSecond)[0];
  if (!ceiling) return [];
  const verifyCpu = (cpus().length * 1000) / ceiling.perSecond;
  return SERVERS.flatMap((server) => {
    const login = fastest(results.flows, server, PASSWORD_LOGIN)?.measurement;
    if (!login?.machineCpuMs) return [];
    return [
      [
        server,
        rate(login.perSecond),
        fmt(login.machineCpuMs, 1),
        fmt(verifyCpu, 1),
        fmt(login.machineCpuMs - verifyCpu, 1),
      ],
    ];
  });
}

export function report(results: Results, elapsedMs: number): string {
  const cpu = cpus();
  const points = TOKEN_POINTS.map(
    (p) => `${fmt(p.requests)} at ${p.connections}${p.rounds > 1 ? ` (${p.rounds} rounds)` : ''}`,
  ).join(', ');
  const out = [
    '## Latchkey benchmark',
    '',
    `${cpu[0]?.model ?? 'unknown CPU'} × ${cpu.length}, shared by the servers, their databases and the load generator; Node ${process.version}; ${new Date().toISOString()}.`,
    `Servers, all running at once, each a child process: Latchkey (dist/) on embedded storage (PGlite) and on PostgreSQL + Redis, and a bare oidc-provider of the same version (scripts/bench/bare-provider.ts) on its in-memory adapter and on its example's Redis adapter, with the same argon2id verify in its login step. Same load generator and client code for all. Each point is measured on each server in turn, the order rotated from point to point. "× reference" is a Latchkey row's throughput over the reference row's at the same point and round: bare+redis for client_credentials and introspection, bare in-memory for the flows.`,
    `Token endpoints: requests per point ${points}, after ${fmt(TOKEN_WARMUP)} per server and endpoint at 10 conns (autocannon, keep-alive connections). Flows: ${PASSWORD_FLOWS} password logins and ${SESSION_FLOWS} session flows per point, one cookie jar per worker. "failed" counts non-2xx answers, unexpected bodies, socket errors and failed flows. CPU columns: CPU time (user + system, all threads) per request or flow of the server process, of this benchmark process (the load generator), and of the whole machine (every process and the kernel: the difference is mostly PostgreSQL and Redis).`,
    '',
    `### Token endpoints at 50 connections, each server in turn, twice (medians of the rounds: with two rounds, their mean; the ratio is the median of the rounds' ratios)`,
    '',
    headlineTable(results),
    '',
    '### Token endpoints, every point',
    '',
    table(
      [
        'server',
        'endpoint',
        'conns',
        'round',
        'requests',
        'req/s',
        '× reference',
        ...RESULT_COLUMNS,
      ],
      results.endpoints.map((r) => runCells(results.endpoints, r, 2)),
    ),
    '',
    `### Authorization code + PKCE flows, GET /auth to POST /token (${FLOW_WORKERS.join(', ')} workers)`,
    '',
    table(
      ['server', 'flow', 'workers', 'flows', 'flows/s', '× reference', ...RESULT_COLUMNS],
      results.flows.map((r) => runCells(results.flows, r, 1)),
    ),
    '',
    `### argon2id verifies in one process (m=${ARGON2.memoryCost} KiB, t=${ARGON2.timeCost}, p=${ARGON2.parallelism}), the password-login ceiling`,
    '',
    table(
      ['concurrency', 'verifies', 'verifies/s', 'p50 ms', 'p99 ms', 'failed', ...CPU_COLUMNS],
      results.argon2.map(measurementCells),
      0,
    ),
  ];
  if (results.responsiveness.length)
    out.push(
      '',
      `### /healthz while people register (probed one at a time, every ${PROBE_INTERVAL_MS} ms; registrations from the sign-in page, each an argon2 hash and a zxcvbn estimate)`,
      '',
      table(
        [
          'storage',
          'registrations at once',
          'registrations',
          'registrations/s',
          'failed',
          '/healthz p50 ms idle',
          'p99 ms idle',
          '/healthz p50 ms loaded',
          'p99 ms loaded',
          'probes loaded',
        ],
        results.responsiveness.map((r) => [
          r.storage,
          String(r.registrations.concurrency),
          fmt(r.registrations.count),
          fmt(r.registrations.perSecond, 1),
          String(r.registrations.failed),
          fmt(r.idle.p50Ms, 1),
          fmt(r.idle.p99Ms, 1),
          fmt(r.loaded.p50Ms, 1),
          fmt(r.loaded.p99Ms, 1),
          fmt(r.loaded.count),
        ]),
        1,
      ),
    );
  if (results.pg.length)
    out.push(
      '',
      `### PostgreSQL activity of Latchkey on postgres+redis (pg_stat read ${PG_STATS_SETTLE_MS / 1000} s after each stage; counts include warm-up and sign-ins)`,
      '',
      table(
        ['stage', 'per', 'count', 'rows written', 'rows written / each', 'transactions / each'],
        results.pg.map((p) => [
          p.name,
          p.per,
          fmt(p.count),
          fmt(p.rowsWritten),
          fmt(p.rowsWritten / p.count, 3),
          fmt(p.transactions / p.count, 3),
        ]),
      ),
    );
  out.push(
    '',
    '### Server processes (the bare server runs TypeScript through Node’s type stripping, which Latchkey’s dist/ does not: about 20 MiB of its RSS)',
    '',
    table(
      ['server', 'peak RSS (VmHWM) MiB'],
      results.rss.map((r) => [r.server, fmt(r.peakMiB)]),
      1,
    ),
    '',
    '### Targets (issue 17)',
    '',
    table(['target', 'measured', 'met'], targetRows(results), 3),
    '',
    '### Password login: the machine CPU of one flow (best worker count) around its argon2 verify',
    '',
    `One verify's CPU is the cores' time over the argon2 ceiling; the rest is the server, its storage, the load generator and the kernel.`,
    '',
    table(
      ['server', 'flows/s', 'machine CPU ms per flow', 'one verify ms', 'all else ms'],
      passwordLoginCpu(results),
      1,
    ),
    '',
    `Wall time: ${fmt(elapsedMs / 1000)} s.`,
  );
  for (const { server, lines } of results.serverLogs)
    if (lines.length)
      out.push(
        '',
        `Server log (${server}; warnings and errors), last lines:`,
        '```',
        ...lines.slice(-10),
        '```',
      );
  return out.join('\n');
}
