// What the benchmark measures and how much: shared by the runner and the report.
import { defaults } from '../../config/defaults.ts';
import type { Measurement } from './load.ts';
import type { Responsiveness } from './responsiveness.ts';
import type { Storage } from './target.ts';

export const STORAGES: Storage[] = ['embedded', 'postgres+redis'];
/** The bare oidc-provider reference (bare-provider.ts): its default in-memory adapter, its example's Redis adapter. */
export type Bare = 'bare in-memory' | 'bare+redis';
export type ServerName = Storage | Bare;
/**
 * Every server runs at once and each point is measured on each in turn, the order rotated from
 * one to the next, so that drift on a shared machine falls on each alike (the "A/B/C
 * alternated"). 50 connections, where the ratios are read, is measured twice.
 */
export const SERVERS: ServerName[] = ['bare+redis', 'postgres+redis', 'embedded', 'bare in-memory'];
export const TOKEN_POINTS = [
  { connections: 1, requests: 2000, rounds: 1 },
  { connections: 10, requests: 3000, rounds: 1 },
  { connections: 50, requests: 8000, rounds: 2 },
];
/** Per server and endpoint, at 10 connections, before the first point (the JIT warms up). */
export const TOKEN_WARMUP = 2000;
export const FLOW_WORKERS = [1, 4, 8];
export const PASSWORD_FLOWS = 200;
export const SESSION_FLOWS = 400;
export const FLOW_WARMUP = 20;
/** Registrations at once while /healthz is probed (8 stalled it for ~0.9 s with zxcvbn inline). */
export const REGISTRATION_WORKERS = 8;
export const REGISTRATIONS = 80;
export const ARGON2_CONCURRENCY = [1, 2];
export const ARGON2_VERIFIES = 60;
export const ARGON2 = {
  memoryCost: defaults.ARGON2_MEMORY_KIB,
  timeCost: defaults.ARGON2_TIME_COST,
  parallelism: defaults.ARGON2_PARALLELISM,
};
// A PostgreSQL backend flushes its statistics at most once a second and, once idle, only after
// PGSTAT_IDLE_INTERVAL (10 s): counters read sooner miss the last second of a run.
export const PG_STATS_SETTLE_MS = 10_500;

/**
 * The cost of metrics and tracing: client_credentials (opaque) on three servers over one
 * PostgreSQL + Redis, hammered in turn, the order rotated each round so that drift (another
 * process on the machine, PostgreSQL's caches) falls on each alike.
 */
export const OBSERVABILITY_ROUNDS = 8;
export const OBSERVABILITY_CONNECTIONS = 10;
export const OBSERVABILITY_REQUESTS = 2000;
/** Per server before the rounds: 500 left the first round ~40% slower than the last (JIT). */
export const OBSERVABILITY_WARMUP = 3000;
/** The bound: metrics cost at most 5% of client_credentials throughput. */
export const METRICS_MAX_COST = 0.05;
export const OBSERVABILITY = ['off', 'metrics on', 'tracing on'] as const;
export type Observability = (typeof OBSERVABILITY)[number];

export const OPAQUE = 'client_credentials, opaque';
export const JWT = 'client_credentials, JWT';
export const INTROSPECTION = 'introspection';
export const PASSWORD_LOGIN = 'password login';
export const EXISTING_SESSION = 'existing session';

/**
 * What each Latchkey row is divided by: a bare row of the same point and round. Token endpoints
 * against the Redis adapter (Latchkey keeps tokens in Redis, or in its embedded database), flows
 * against the in-memory adapter (the most the engine can do with the same argon2 verify).
 */
export const REFERENCE: Partial<Record<string, Bare>> = {
  [OPAQUE]: 'bare+redis',
  [INTROSPECTION]: 'bare+redis',
  [PASSWORD_LOGIN]: 'bare in-memory',
  [EXISTING_SESSION]: 'bare in-memory',
};

/** `round` counts from 0: the points measured twice have rounds 0 and 1. */
export type Run = { server: ServerName; name: string; round: number; measurement: Measurement };
export type PgActivity = {
  name: string;
  per: 'request' | 'flow';
  count: number;
  rowsWritten: number;
  transactions: number;
};
export type Results = {
  argon2: Measurement[];
  endpoints: Run[];
  flows: Run[];
  pg: PgActivity[];
  rss: { server: ServerName; peakMiB: number }[];
  responsiveness: ({ storage: Storage } & Responsiveness)[];
  serverLogs: { server: ServerName; lines: string[] }[];
  observability: { variant: Observability; measurement: Measurement }[];
};
