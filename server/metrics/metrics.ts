import type * as PromClient from 'prom-client';

// Every metric Latchkey exports, in one place (Prometheus naming: the `latchkey_` prefix, base
// units, `_total` counters). Labels take only values from a fixed set written in the code:
// never an email, user id, client id or IP. Client ids are bounded by admins, not by the code:
// a deployment with thousands of clients would make thousands of series per metric; which
// client did what is in the audit trail.

type Labels<L extends string> = Partial<Record<L, string>>;
/** `inc()` counts one; with a count, labels come first (`{}` when there are none). */
export type Counter<L extends string = never> = {
  inc(labels?: Labels<L>): void;
  inc(labels: Labels<L>, by: number): void;
};
export type Gauge<L extends string = never> = { set(labels: Labels<L>, value: number): void };
export type Histogram<L extends string = never> = {
  observe(labels: Labels<L>, value: number): void;
  startTimer(): (labels?: Labels<L>) => number;
};

const NOOP = {
  inc() {},
  set() {},
  observe() {},
  startTimer: () => () => 0,
};

/** Seconds: from a fast token request (~1 ms) to a request that waited out a dependency timeout. */
const DURATION_BUCKETS = [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
/** Seconds a password check waited for an argon2 slot: none, up to a queue of many hashes. */
const WAIT_BUCKETS = [0.001, 0.005, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
/** Audit rows written in one group commit (at most 500). */
const BATCH_BUCKETS = [1, 2, 5, 10, 25, 50, 100, 250, 500];

/** prom-client, which the server loads only when metrics are on (~2 MiB of heap otherwise idle). */
export type Prom = typeof PromClient;

/**
 * The metrics of one process, registered with `prom`. Without it (METRICS_PORT unset, the CLI)
 * every metric is a no-op and nothing is registered or sampled: counting costs one empty call.
 */
export function createMetrics({ prom }: { prom?: Prom | undefined }) {
  const registry = prom ? new prom.Registry() : undefined;
  const enabled = prom !== undefined;
  const registers = registry ? [registry] : [];
  const counter = <L extends string = never>(
    name: string,
    help: string,
    labelNames: L[] = [],
  ): Counter<L> =>
    (prom ? new prom.Counter({ name, help, labelNames, registers }) : NOOP) as Counter<L>;
  // `aggregator`: how the primary combines the workers' values (WORKERS, server/cluster/):
  // summed unless said otherwise; state every process reads alike is taken once (max), and a
  // check is up only when it is up in every worker (min).
  const gauge = <L extends string = never>(
    name: string,
    help: string,
    labelNames: L[] = [],
    aggregator: PromClient.Aggregator = 'sum',
  ): Gauge<L> =>
    prom ? new prom.Gauge({ name, help, labelNames, registers, aggregator }) : (NOOP as Gauge<L>);
  const histogram = <L extends string = never>(
    name: string,
    help: string,
    buckets: number[],
    labelNames: L[] = [],
  ): Histogram<L> =>
    prom
      ? new prom.Histogram({ name, help, labelNames, buckets, registers })
      : (NOOP as Histogram<L>);

  /** Run at each scrape, before the metrics are read: gauges of state held elsewhere. */
  const samplers: (() => Promise<void> | void)[] = [];

  return {
    enabled,
    registry,
    samplers,
    /** Sets gauges at each scrape from state held elsewhere (a pool, a table); no-op when off. */
    onScrape(sample: () => Promise<void> | void): void {
      if (registry) samplers.push(sample);
    },

    // HTTP. The histogram's _count is the request count.
    httpDuration: histogram(
      'latchkey_http_request_duration_seconds',
      'Time to answer an HTTP request, by route template and status class (2xx, 4xx …).',
      DURATION_BUCKETS,
      ['route', 'status_class'],
    ),

    // Sign-ins and brute-force protection.
    signIns: counter(
      'latchkey_sign_in_attempts_total',
      'Sign-in attempts by method (password, directory, passkey, second_factor) and outcome.',
      ['method', 'outcome'],
    ),
    lockouts: counter('latchkey_lockouts_total', 'Account lockouts started.'),
    rateLimitRefusals: counter(
      'latchkey_rate_limit_refusals_total',
      'Requests refused by a rate limit, by limit name.',
      ['limit'],
    ),

    // Tokens.
    tokensIssued: counter(
      'latchkey_tokens_issued_total',
      'Token responses by grant type and access token format (opaque, jwt).',
      ['grant_type', 'format'],
    ),
    refreshRotations: counter(
      'latchkey_refresh_token_rotations_total',
      'Refresh tokens exchanged for new ones.',
    ),
    refreshReuse: counter(
      'latchkey_refresh_token_reuse_total',
      'Spent refresh tokens presented again (a sign of theft); each revokes its grant.',
    ),
    revocations: counter(
      'latchkey_token_revocations_total',
      'Revocation requests answered 200 (RFC 7009).',
    ),
    introspections: counter(
      'latchkey_introspections_total',
      'Introspection requests by result (active, inactive, error).',
      ['result'],
    ),

    // Mail.
    mailSent: counter('latchkey_mail_sent_total', 'Mails the SMTP server (or outbox) took.'),
    mailFailed: counter('latchkey_mail_failed_total', 'Mails given up, never to be delivered.'),
    mailRetries: counter(
      'latchkey_mail_retries_total',
      'Failed deliveries that will be tried again.',
    ),
    mailQueue: gauge(
      'latchkey_mail_outbox_messages',
      'Mails in the outbox, by status (pending, failed); shared by every process.',
      ['status'],
      'max',
    ),

    // Directory (LDAP / Active Directory).
    directoryBinds: counter(
      'latchkey_directory_binds_total',
      'Sign-in binds to the directory by outcome (success, invalid, disabled, unavailable).',
      ['outcome'],
    ),
    directorySyncs: counter(
      'latchkey_directory_sync_runs_total',
      'Directory sync runs by outcome (success, failure).',
      ['outcome'],
    ),
    directorySyncEntries: counter(
      'latchkey_directory_sync_entries_total',
      'Accounts a directory sync created, updated or disabled.',
      ['change'],
    ),
    directoryLastSync: gauge(
      'latchkey_directory_last_sync_success_timestamp_seconds',
      'When a directory sync (by any process) last committed, Unix time.',
      [],
      'max',
    ),

    // Signing keys.
    signingKeys: gauge(
      'latchkey_signing_keys',
      'Signing keys by stage (announced, active, retiring).',
      ['state'],
      'max',
    ),
    nextKeyRotation: gauge(
      'latchkey_signing_keys_next_rotation_timestamp_seconds',
      'When the schedule next announces new signing keys, Unix time.',
      [],
      'max',
    ),

    // Audit trail.
    auditWriteFailures: counter(
      'latchkey_audit_write_failures_total',
      'Audit events that could not be recorded.',
    ),
    auditBatchSize: histogram(
      'latchkey_audit_batch_size',
      'Audit events written in one group commit.',
      BATCH_BUCKETS,
    ),

    // Dependencies.
    dbPool: gauge(
      'latchkey_db_pool_connections',
      'Database pool connections by state (used, free, pending: requests waiting for one).',
      ['state'],
    ),
    redisUp: gauge(
      'latchkey_redis_connected',
      '1 while the Redis connection is ready (in every worker), else 0.',
      [],
      'min',
    ),
    ready: gauge(
      'latchkey_readiness_check_up',
      'Readiness (/readyz) checks at scrape time, by check (database, redis, ldap, all): 1 ok.',
      ['check'],
      'min',
    ),
    argon2Queue: gauge(
      'latchkey_argon2_queue_length',
      'Password hashes and verifications waiting for an argon2 slot.',
    ),
    argon2Wait: histogram(
      'latchkey_argon2_wait_seconds',
      'Time a password hash or verification waited for an argon2 slot.',
      WAIT_BUCKETS,
    ),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/** What code counts into when metrics are off: every metric a no-op. */
export const NO_METRICS: Metrics = createMetrics({});
