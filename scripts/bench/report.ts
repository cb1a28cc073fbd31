// The markdown report printed by `npm run bench`.
import { cpus } from 'node:os';
import type { Measurement } from './load.ts';
import {
  STORAGES,
  TOKEN_REQUESTS,
  TOKEN_WARMUP,
  PASSWORD_FLOWS,
  SESSION_FLOWS,
  ARGON2,
  PG_STATS_SETTLE_MS,
  OPAQUE,
  INTROSPECTION,
  PASSWORD_LOGIN,
  EXISTING_SESSION,
  type Results,
  type Run,
} from './plan.ts';
import { PROBE_INTERVAL_MS } from './responsiveness.ts';
import type { Storage } from './target.ts';

export function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

/** A markdown table; the first `textColumns` columns are left-aligned, the rest are numbers. */
function table(header: string[], rows: string[][], textColumns = 2): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  const rule = header.map((_, i) => (i < textColumns ? '---' : '--:'));
  return [line(header), line(rule), ...rows.map(line)].join('\n');
}

const CPU_COLUMNS = ['server CPU ms each', 'bench CPU ms each', 'machine CPU ms each'];

function measurementCells(m: Measurement): string[] {
  return [
    String(m.concurrency),
    fmt(m.count),
    fmt(m.perSecond, m.perSecond < 100 ? 1 : 0),
    fmt(m.p50Ms, 1),
    fmt(m.p99Ms, 1),
    String(m.failed),
    m.serverCpuMs === undefined ? '–' : fmt(m.serverCpuMs, 2),
    fmt(m.benchCpuMs, 2),
    m.machineCpuMs === undefined ? '–' : fmt(m.machineCpuMs, 2),
  ];
}

function measurementsOf(runs: Run[], storage: Storage, name: string): Measurement[] {
  return runs.filter((r) => r.storage === storage && r.name === name).map((r) => r.measurement);
}

const fastest = (ms: Measurement[]) => ms.sort((a, b) => b.perSecond - a.perSecond)[0];

function targetRows(results: Results): string[][] {
  const rows: string[][] = [];
  const check = (what: string, measured: string, met: boolean) =>
    rows.push([what, measured, met ? 'yes' : '**no**']);
  const rate = (m: Measurement, unit: string) =>
    `${fmt(m.perSecond, m.perSecond < 100 ? 1 : 0)}/s at ${m.concurrency} ${unit}`;
  const argon2Ceiling = Math.max(0, ...results.argon2.map((m) => m.perSecond));

  for (const storage of STORAGES) {
    const opaque = measurementsOf(results.endpoints, storage, OPAQUE);
    const best = fastest(opaque);
    const at50 = opaque.find((m) => m.concurrency === 50);
    if (storage === 'postgres+redis' && best)
      check(`${storage}: ${OPAQUE} ≥ 2,000/s`, rate(best, 'conns'), best.perSecond >= 2000);
    if (storage === 'postgres+redis' && at50)
      check(
        `${storage}: ${OPAQUE} p99 ≤ 50 ms at 50 conns`,
        `${fmt(at50.p99Ms, 1)} ms`,
        at50.p99Ms <= 50,
      );
    const introspection = fastest(measurementsOf(results.endpoints, storage, INTROSPECTION));
    if (introspection)
      check(
        `${storage}: introspection ≥ 2,500/s`,
        rate(introspection, 'conns'),
        introspection.perSecond >= 2500,
      );
    const login = fastest(measurementsOf(results.flows, storage, PASSWORD_LOGIN));
    if (login && argon2Ceiling) {
      const ratio = login.perSecond / argon2Ceiling;
      check(
        `${storage}: password-login flows/s ≥ 0.8 × argon2 verifies/s`,
        `${fmt(login.perSecond, 1)} ÷ ${fmt(argon2Ceiling, 1)} = ${fmt(ratio, 2)}`,
        ratio >= 0.8,
      );
    }
    const session = fastest(measurementsOf(results.flows, storage, EXISTING_SESSION));
    if (session)
      check(
        `${storage}: code flows with an existing session ≥ 150/s`,
        rate(session, 'workers'),
        session.perSecond >= 150,
      );
  }
  const perRequest = results.pg.filter((p) => p.per === 'request');
  if (perRequest.length) {
    const rowsWritten = perRequest.reduce((sum, p) => sum + p.rowsWritten, 0);
    const requests = perRequest.reduce((sum, p) => sum + p.count, 0);
    check(
      'postgres+redis: PostgreSQL rows written by client_credentials and introspection = 0',
      `${fmt(rowsWritten)} rows in ${fmt(requests)} requests`,
      rowsWritten === 0,
    );
  }
  return rows;
}

/**
 * The 0.8 × argon2 target as CPU: at the ceiling the cores do nothing but argon2, so a flow may
 * spend, outside its one verify, a quarter of a verify's CPU. Compared with what it spent.
 */
function passwordLoginCpu(results: Results): string[][] {
  const ceiling = fastest([...results.argon2]);
  if (!ceiling) return [];
  const cores = cpus().length;
  const verifyCpu = (cores * 1000) / ceiling.perSecond;
  const allowed = (cores * 1000) / (0.8 * ceiling.perSecond) - verifyCpu;
  return STORAGES.flatMap((storage) => {
    const login = fastest(measurementsOf(results.flows, storage, PASSWORD_LOGIN));
    if (!login?.machineCpuMs) return [];
    return [
      [
        storage,
        fmt(login.perSecond, 1),
        fmt(login.machineCpuMs, 1),
        fmt(verifyCpu, 1),
        fmt(login.machineCpuMs - verifyCpu, 1),
        fmt(allowed, 1),
      ],
    ];
  });
}

export function report(results: Results, elapsedMs: number): string {
  const cpu = cpus();
  const out = [
    '## Latchkey benchmark',
    '',
    `${cpu[0]?.model ?? 'unknown CPU'} × ${cpu.length}, shared by the server, its databases and the load generator; Node ${process.version}; ${new Date().toISOString()}.`,
    `Token endpoints: ${fmt(TOKEN_REQUESTS)} requests per point after ${TOKEN_WARMUP} warm-up (autocannon, keep-alive connections). Flows: ${PASSWORD_FLOWS} password logins and ${SESSION_FLOWS} session flows per point, one cookie jar per worker. "failed" counts non-2xx answers, unexpected bodies, socket errors and failed flows. CPU columns: CPU time (user + system, all threads) per request or flow of the server process, of this benchmark process (the load generator), and of the whole machine (every process and the kernel: the difference is mostly PostgreSQL and Redis).`,
    '',
    '### Token endpoints',
    '',
    table(
      [
        'storage',
        'endpoint',
        'conns',
        'requests',
        'req/s',
        'p50 ms',
        'p99 ms',
        'failed',
        ...CPU_COLUMNS,
      ],
      results.endpoints.map((r) => [r.storage, r.name, ...measurementCells(r.measurement)]),
    ),
    '',
    '### Authorization code + PKCE flows, GET /auth to POST /token',
    '',
    table(
      [
        'storage',
        'flow',
        'workers',
        'flows',
        'flows/s',
        'p50 ms',
        'p99 ms',
        'failed',
        ...CPU_COLUMNS,
      ],
      results.flows.map((r) => [r.storage, r.name, ...measurementCells(r.measurement)]),
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
      `### PostgreSQL activity on postgres+redis (pg_stat read ${PG_STATS_SETTLE_MS / 1000} s after each run; counts include warm-up and sign-ins)`,
      '',
      table(
        ['run', 'per', 'count', 'rows written', 'rows written / each', 'transactions / each'],
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
    '### Server process',
    '',
    table(
      ['storage', 'peak RSS (VmHWM) MiB'],
      results.rss.map((r) => [r.storage, fmt(r.peakMiB)]),
      1,
    ),
    '',
    '### Targets',
    '',
    table(['target', 'measured', 'met'], targetRows(results), 3),
    '',
    '### Password login: the machine CPU of one flow, against the 0.8 × argon2 target',
    '',
    `One verify's CPU is the cores' time over the argon2 ceiling; the target leaves a flow a quarter of that for everything else (server, PostgreSQL, Redis, load generator, kernel).`,
    '',
    table(
      [
        'storage',
        'flows/s',
        'machine CPU ms per flow',
        'one verify ms',
        'all else ms',
        'all else allowed ms',
      ],
      passwordLoginCpu(results),
      1,
    ),
    '',
    `Wall time: ${fmt(elapsedMs / 1000)} s.`,
  );
  for (const { storage, lines } of results.serverLogs)
    if (lines.length)
      out.push(
        '',
        `Server log (${storage}, LOG_LEVEL=warn), last lines:`,
        '```',
        ...lines.slice(-10),
        '```',
      );
  return out.join('\n');
}
