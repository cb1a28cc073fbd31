// Issue 17's targets, each checked against the bare oidc-provider measured in the same run, and
// the headline table they are read from: the token endpoints at 50 connections.
import { fmt, rate, table, times } from './format.ts';
import {
  EXISTING_SESSION,
  INTROSPECTION,
  OPAQUE,
  PASSWORD_LOGIN,
  REFERENCE,
  SERVERS,
  type Results,
  type Run,
  type ServerName,
} from './plan.ts';
import { fastest, summarize } from './ratios.ts';

/** The connections at which the token endpoints' ratios and p99 targets are read. */
const HEADLINE_CONNECTIONS = 50;
const EMBEDDED_MIN_RATIO = 0.75;
const EMBEDDED_MAX_P99_MS = 50;
const EMBEDDED_MIN_SESSION_FLOWS = 200;
const POSTGRES_MIN_RATIO = 1.0;
const POSTGRES_MAX_CC_P99_MS = 25;
const MAX_RSS_MIB: Partial<Record<ServerName, number>> = {
  embedded: 300,
  'postgres+redis': 200,
};

/** Each server's client_credentials and introspection at 50 connections, over the rounds. */
export function headlineTable(results: Results): string {
  const rows = [OPAQUE, INTROSPECTION].flatMap((name) =>
    SERVERS.flatMap((server) => {
      const s = summarize(results.endpoints, server, name, HEADLINE_CONNECTIONS);
      if (!s) return [];
      return [
        [
          name,
          server,
          s.rounds.map((m) => rate(m.perSecond)).join(' / '),
          rate(s.perSecond),
          s.ratio === undefined ? (server === REFERENCE[name] ? 'reference' : '–') : times(s.ratio),
          s.rounds.map((m) => fmt(m.p99Ms, 1)).join(' / '),
          fmt(s.p99Ms, 1),
          s.serverCpuMs === undefined ? '–' : fmt(s.serverCpuMs, 3),
        ],
      ];
    }),
  );
  return table(
    [
      'endpoint',
      'server',
      'req/s each round',
      'req/s',
      '× reference',
      'p99 ms each round',
      'p99 ms',
      'server CPU ms each',
    ],
    rows,
  );
}

export function targetRows(results: Results): string[][] {
  const rows: string[][] = [];
  const check = (what: string, measured: string, met: boolean | 'info') =>
    rows.push([what, measured, met === 'info' ? '(information)' : met ? 'yes' : '**no**']);
  const headline = (server: ServerName, name: string) =>
    summarize(results.endpoints, server, name, HEADLINE_CONNECTIONS);
  const versus = (value: number, ref: ServerName) => `${times(value)} ${ref}`;

  const tokenRatio = (server: ServerName, name: string, min: number) => {
    const s = headline(server, name);
    if (s?.ratio === undefined) return;
    check(
      `${server}: ${name} ≥ ${fmt(min, 2)}× ${REFERENCE[name]} at ${HEADLINE_CONNECTIONS} conns`,
      `${rate(s.perSecond)}/s, ${versus(s.ratio, REFERENCE[name]!)}`,
      s.ratio >= min,
    );
  };
  const flowRatio = (server: ServerName, name: string, min: number) => {
    const mine = fastest(results.flows, server, name);
    const ref = fastest(results.flows, REFERENCE[name]!, name);
    if (!mine || !ref) return;
    const ratio = mine.measurement.perSecond / ref.measurement.perSecond;
    check(
      `${server}: ${name} flows/s ≥ ${fmt(min, 2)}× ${REFERENCE[name]} (best worker count of each)`,
      `${flowRate(mine)} ÷ ${flowRate(ref)} = ${times(ratio)}`,
      ratio >= min,
    );
  };

  tokenRatio('embedded', OPAQUE, EMBEDDED_MIN_RATIO);
  tokenRatio('embedded', INTROSPECTION, EMBEDDED_MIN_RATIO);
  const cc = headline('embedded', OPAQUE);
  const introspection = headline('embedded', INTROSPECTION);
  if (cc && introspection)
    check(
      `embedded: p99 ≤ ${EMBEDDED_MAX_P99_MS} ms at ${HEADLINE_CONNECTIONS} conns (client_credentials, introspection)`,
      `${fmt(cc.p99Ms, 1)} ms, ${fmt(introspection.p99Ms, 1)} ms`,
      Math.max(cc.p99Ms, introspection.p99Ms) <= EMBEDDED_MAX_P99_MS,
    );
  const session = fastest(results.flows, 'embedded', EXISTING_SESSION);
  if (session)
    check(
      `embedded: ${EXISTING_SESSION} flows ≥ ${EMBEDDED_MIN_SESSION_FLOWS}/s`,
      flowRate(session),
      session.measurement.perSecond >= EMBEDDED_MIN_SESSION_FLOWS,
    );

  tokenRatio('postgres+redis', OPAQUE, POSTGRES_MIN_RATIO);
  tokenRatio('postgres+redis', INTROSPECTION, POSTGRES_MIN_RATIO);
  flowRatio('postgres+redis', PASSWORD_LOGIN, POSTGRES_MIN_RATIO);
  flowRatio('postgres+redis', EXISTING_SESSION, POSTGRES_MIN_RATIO);
  const pgCc = headline('postgres+redis', OPAQUE);
  if (pgCc)
    check(
      `postgres+redis: ${OPAQUE} p99 ≤ ${POSTGRES_MAX_CC_P99_MS} ms at ${HEADLINE_CONNECTIONS} conns`,
      `${fmt(pgCc.p99Ms, 1)} ms`,
      pgCc.p99Ms <= POSTGRES_MAX_CC_P99_MS,
    );

  for (const { server, peakMiB } of results.rss) {
    const max = MAX_RSS_MIB[server];
    if (max) check(`${server}: peak RSS ≤ ${max} MiB`, `${fmt(peakMiB)} MiB`, peakMiB <= max);
    else check(`${server}: peak RSS`, `${fmt(peakMiB)} MiB`, 'info');
  }

  for (const p of results.pg) {
    if (p.per === 'request')
      check(
        'postgres+redis: PostgreSQL rows written by client_credentials (opaque, JWT) and introspection = 0',
        `${fmt(p.rowsWritten)} rows in ${fmt(p.count)} requests`,
        p.rowsWritten === 0,
      );
    else
      check(
        `postgres+redis: PostgreSQL rows written per ${p.name} flow`,
        fmt(p.rowsWritten / p.count, 2),
        'info',
      );
  }
  const argon2 = [...results.argon2].sort((a, b) => b.perSecond - a.perSecond)[0];
  if (argon2)
    check(
      'argon2id ceiling: verifies/s in one process',
      `${rate(argon2.perSecond)}/s at ${argon2.concurrency} at a time`,
      'info',
    );
  return rows;
}

const flowRate = ({ measurement: { perSecond, concurrency } }: Run) =>
  `${rate(perSecond)}/s at ${concurrency} worker${concurrency === 1 ? '' : 's'}`;
