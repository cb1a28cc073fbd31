import { availableParallelism } from 'node:os';
import { z } from 'zod';
import {
  bool,
  domains,
  duration,
  durationOrOff,
  durations,
  hostPorts,
  int,
  limit,
  list,
  optionalUrl,
  proxies,
  setting,
  type Read,
} from './setting.ts';
import { ldapSettings } from './ldap.ts';

// Every setting once: its environment variable, its default (taken when the variable is unset or
// empty) and how its text is read, with the reason where it is not obvious. loadConfig validates
// the environment against them and builds the typed Config from what they read. The README's
// configuration table lists each (test/config/documented.test.ts checks that it does).

/**
 * OWASP ASVS 4.0 V2.1.2: allow at least 64 characters, refuse more than 128. argon2 itself takes
 * up to 2^32-1 bytes, so this is our bound on what reaches it and zxcvbn: a DoS guard, since both
 * cost grows with the input and nobody types a 129-character password.
 */
export const PASSWORD_MAX_LENGTH = 128;

export const settings = {
  /** `production` requires an https issuer, trusted proxies, SMTP, a sealing key and cookie keys. */
  NODE_ENV: setting('development', z.string()),
  /** Public URL of the server; becomes the `iss` of every token. Unset: http://localhost:<PORT>. */
  ISSUER: setting('', z.url()),
  PORT: setting(3000, int(0, 65535)),
  HOST: setting('0.0.0.0', z.string().min(1)),
  /**
   * Worker processes serving PORT (node:cluster): Node runs a process's JavaScript on one core.
   * 0: one per CPU core in production on PostgreSQL + Redis, else 1. The embedded database is
   * opened by one process only, so it takes 1. With more than one, a primary process forks them,
   * serves METRICS_PORT (the workers' figures combined) and replaces a worker that dies
   * (server/cluster/); the pool sizes below are shared among the workers.
   */
  WORKERS: setting(0, int(0, 256)),
  /** Folder for the embedded database, development secrets and the development mail outbox. */
  DATA_DIR: setting('./data', z.string().min(1)),
  /** PostgreSQL server; unset means PGlite (Postgres in WASM) in DATA_DIR/pglite. */
  DATABASE_URL: setting('', optionalUrl),
  /**
   * Connections per Latchkey process (its workers share them: WORKERS); PostgreSQL's default
   * max_connections is 100, so ~8 processes fit.
   */
  DATABASE_POOL_MAX: setting(10, int(1)),
  /**
   * How long a request waits on PostgreSQL or Redis before it answers 503: long enough for a
   * Sentinel failover or a busy moment, short enough that an outage is not a hang. PostgreSQL
   * is told too (statement_timeout, idle_in_transaction_session_timeout: server/db.ts), so that
   * what a request gave up on does not commit later.
   */
  DEPENDENCY_TIMEOUT_MS: setting(2000, int(100)),
  /** Redis for short-lived protocol state (sessions, codes, opaque access tokens). */
  REDIS_URL: setting('', optionalUrl),
  /**
   * Comma-separated host:port of Redis Sentinels; with it the master named REDIS_SENTINEL_NAME
   * is found through them (and followed on failover). REDIS_URL then gives only the password and
   * database number, if any.
   */
  REDIS_SENTINELS: setting('', hostPorts),
  REDIS_SENTINEL_NAME: setting('mymaster', z.string().min(1)),
  /** Comma-separated host:port of Redis Cluster nodes (any few; the rest are discovered). */
  REDIS_CLUSTER_NODES: setting('', hostPorts),
  /** 32 bytes, base64: seals client secrets and private signing keys (AES-256-GCM). */
  SEALING_KEY: setting('', z.string()),
  /** Comma-separated secrets that sign cookies; the first signs, all verify (rotation). */
  COOKIE_KEYS: setting('', z.string()),
  LOG_LEVEL: setting(
    'info',
    z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  ),
  /**
   * Comma-separated addresses or CIDR ranges of the reverse proxies in front of Latchkey (or
   * loopback, uniquelocal). X-Forwarded-For is believed only from them: the client IP is the
   * last address in it that is not one of them. Empty: none. Host, X-Forwarded-Host and
   * X-Forwarded-Proto are believed from nobody: every URL derives from ISSUER.
   */
  TRUST_PROXY: setting('', proxies),
  /**
   * Port of a second listener that serves only GET /metrics (Prometheus). Unset: no metrics,
   * and counting costs nothing. A listener of its own rather than a path on PORT: the public
   * proxy never routes it, so nobody outside reads the traffic's shape, Prometheus needs no
   * secret, and scrapes escape the public rate limits. 0 picks a free port (tests).
   */
  METRICS_PORT: setting('', z.union([z.literal(''), int(0, 65535)])),
  /** Address the metrics listener binds; a Prometheus in another container needs 0.0.0.0. */
  METRICS_HOST: setting('0.0.0.0', z.string().min(1)),
  /**
   * OpenTelemetry's standard variable: the OTLP/HTTP collector that receives traces (the
   * exporter posts JSON to <this>/v1/traces). Unset: no tracing, and no tracing SDK is even
   * loaded. The SDK reads the other OTEL_* variables itself (README: Tracing).
   */
  OTEL_EXPORTER_OTLP_ENDPOINT: setting('', optionalUrl),
  /** The service.name of every span; several deployments reporting to one collector differ here. */
  OTEL_SERVICE_NAME: setting('latchkey', z.string().min(1)),

  /** First-start admin account; the password is printed once when not given. */
  ADMIN_EMAIL: setting('admin@example.com', z.email()),
  ADMIN_PASSWORD: setting('', z.string()),
  /** Create a demo client on first start (development only). */
  DEMO_CLIENT: setting(true, bool),
  DEMO_CLIENT_REDIRECT_URI: setting('http://localhost:8080/callback', z.url()),

  // OWASP Password Storage Cheat Sheet, argon2id option 2: m=19 MiB, t=2, p=1. ~30 ms per hash
  // here; the argon2 package's own defaults (64 MiB, t=3, p=4) cost ~185 ms and cap logins at ~7/s.
  ARGON2_MEMORY_KIB: setting(19456, int(8192)),
  ARGON2_TIME_COST: setting(2, int(1)),
  ARGON2_PARALLELISM: setting(1, int(1)),
  /** Hashes computed at once; 0: one per CPU core, up to 8 (server/security/passwords.ts says why). */
  ARGON2_CONCURRENCY: setting(0, int(0)),

  // Lifetimes, in seconds.
  /** Short access tokens bound how long a revoked grant's JWTs stay usable. */
  ACCESS_TOKEN_TTL: setting(600, int(1)),
  ID_TOKEN_TTL: setting(3600, int(1)),
  AUTHORIZATION_CODE_TTL: setting(60, int(1)),
  REFRESH_TOKEN_TTL: setting(14 * 24 * 3600, int(1)),
  /** Seconds a browser session lasts from its sign-in; activity does not extend it. */
  SESSION_TTL: setting(14 * 24 * 3600, int(1)),
  INTERACTION_TTL: setting(3600, int(1)),
  GRANT_TTL: setting(365 * 24 * 3600, int(1)),
  CLIENT_CREDENTIALS_TTL: setting(600, int(1)),
  /**
   * A rotated refresh token presented again within this many seconds counts as a concurrent
   * refresh (two tabs, a retry after a lost response) and is honoured; after it, reuse is
   * treated as theft and revokes the whole grant.
   */
  REFRESH_REUSE_GRACE_SECONDS: setting(5, int(0)),

  /** Algorithm of the key that signs ID tokens and JWT access tokens. ES256 signs ~10x faster than RS256. */
  SIGNING_ALG: setting('ES256', z.enum(['ES256', 'EdDSA', 'RS256'])),
  /** Days between automatic key rotations; 0 turns the schedule off (the CLI still rotates). */
  KEY_ROTATION_DAYS: setting(90, int(0)),
  /** Seconds a new key is published before it signs, so relying parties' JWKS caches pick it up. */
  KEY_ANNOUNCE_SECONDS: setting(24 * 3600, int(0)),
  /** How often each process re-reads the key table, so every process agrees on the active key. */
  KEY_REFRESH_SECONDS: setting(60, int(1)),

  /** JSON list of APIs for resource indicators: [{"audience","scopes","format":"jwt"|"opaque"}]. */
  RESOURCE_SERVERS: setting('[]', z.string()),
  /**
   * Format of access tokens for the admin API (<issuer>/api/v1). Opaque by default: an admin's
   * token can then be revoked at once, where a JWT stands until it expires.
   */
  ADMIN_API_TOKEN_FORMAT: setting('opaque', z.enum(['opaque', 'jwt'])),
  /** Lifetime of an admin API access token, seconds: short, as it can do much. */
  ADMIN_API_TOKEN_TTL: setting(600, int(1)),
  /** Seconds a client read from the database is reused; CLI changes take effect within it. */
  CLIENT_CACHE_SECONDS: setting(10, int(0)),
  /**
   * How long a client's old secret keeps working after a rotation (admin API rotate-secret), so
   * that its deployments can move to the new one without an outage. A rotation for a leaked
   * secret asks for less (down to none) per call.
   */
  CLIENT_SECRET_OVERLAP: setting('24h', duration),
  /** Named in pages and emails. */
  PRODUCT_NAME: setting('Latchkey', z.string().min(1)),
  /** smtp: deliver through SMTP_*. outbox: write .eml files to DATA_DIR/outbox and log the link. Unset: outbox outside production, smtp in production. */
  MAIL_TRANSPORT: setting('', z.enum(['', 'smtp', 'outbox'])),
  MAIL_FROM: setting('Latchkey <no-reply@localhost>', z.string().min(3)),
  SMTP_HOST: setting('', z.string()),
  /** 587 is the submission port (RFC 6409) with STARTTLS; 465 with SMTP_SECURITY=tls. */
  SMTP_PORT: setting(587, int(1, 65535)),
  /** tls (implicit TLS), starttls (required, the default), none (a local relay only). */
  SMTP_SECURITY: setting('starttls', z.enum(['tls', 'starttls', 'none'])),
  SMTP_USER: setting('', z.string()),
  SMTP_PASSWORD: setting('', z.string()),
  /** Reuse SMTP connections across messages. */
  SMTP_POOL: setting(true, bool),

  /** Anyone may create an account from the login page. Off by default: an admin opens the door. */
  REGISTRATION_ENABLED: setting(false, bool),
  /** Comma-separated email domains allowed to register; empty allows any. */
  REGISTRATION_DOMAINS: setting('', domains),
  /**
   * Comma-separated email domains whose people have accounts in the directory (LDAP / AD): they
   * may not self-register, so nobody can register a colleague's address ahead of them. (With
   * LDAP_BIND_DN set, an address the directory lists is never registered anyway; this also
   * covers direct-bind setups, which cannot search, and people not in the directory yet.)
   */
  REGISTRATION_BLOCKED_DOMAINS: setting('', domains),
  /** A new account must verify its email address before it can sign in. */
  EMAIL_VERIFICATION_REQUIRED: setting(true, bool),
  /** Seconds a verification link works: a day covers "I'll check my mail tonight". */
  VERIFY_EMAIL_TTL: setting(24 * 3600, int(60)),
  /** Seconds a password reset link works: short, since the link alone takes over the account. */
  PASSWORD_RESET_TTL: setting(30 * 60, int(60)),
  /**
   * Seconds the set-password link of an admin's invitation works (admin API, POST /users with
   * `invite`). Longer than a reset link: the person may not expect it, and the account has no
   * password to take over yet; three days cover a weekend.
   */
  INVITATION_TTL: setting(3 * 24 * 3600, int(3600)),
  /**
   * Seconds the "this wasn't me" link of a security email works (email changed, password
   * changed, new device). A week: the owner of a taken-over account may not read the old
   * mailbox every day, and the link only locks the account and, after an email change,
   * gives the address back to that old mailbox.
   */
  SECURE_ACCOUNT_LINK_TTL: setting(7 * 24 * 3600, int(3600)),
  /** Seconds before another verification or reset email goes to the same account. */
  EMAIL_RESEND_SECONDS: setting(60, int(0)),

  /**
   * Shortest password accepted: OWASP ASVS 4.0 V2.1.1's minimum. NIST SP 800-63B-4 asks for 15
   * where the password is the only factor: raise it when accounts have no second factor and users
   * can live with it.
   */
  PASSWORD_MIN_LENGTH: setting(12, int(8, PASSWORD_MAX_LENGTH)),
  /**
   * zxcvbn score 0-4 a new password must reach. 3 means an estimated 10^8 guesses or more: out of
   * reach of online guessing and slow to crack offline against argon2id hashes. 4 (10^10) refuses
   * many memorable passphrases.
   */
  PASSWORD_MIN_STRENGTH: setting(3, int(0, 4)),
  /**
   * Previous passwords remembered besides the current one; 0 turns the reuse check off, the
   * current password included. We never force periodic changes (NIST SP 800-63B-4 §3.1.1.2), so
   * history only has to stop switching straight back after a change, e.g. after a leak; 5 does
   * that at a cost of at most 6 argon2 verifications per change.
   */
  PASSWORD_HISTORY: setting(5, int(0, 24)),
  /**
   * Worker threads that estimate password strength (zxcvbn, 5-160 ms of CPU each) off the event
   * loop, so a burst of registrations cannot stall every other request; 0: half the CPU cores,
   * at least one.
   */
  PASSWORD_CHECK_THREADS: setting(0, int(0, 64)),
  /**
   * Strength checks that may wait for a thread; beyond them the form asks to try again in a
   * moment. 16 waits at most ~2.5 s behind one thread at the worst case, ~0.3 s typically.
   */
  PASSWORD_CHECK_QUEUE: setting(16, int(0)),

  // Rate limits, as count/duration (s, m, h, d) or off. Shared by every process: kept in Redis
  // when configured, else in PostgreSQL. Keys are latchkey:rl:<limit>:<ip, client or hashed email>.
  /**
   * Failed sign-ins from one IP. Counting failures, not attempts, keeps an office behind one NAT
   * signing in at 9 am unaffected, while a guesser gets 50 tries per 15 minutes from an address.
   */
  RATE_LIMIT_LOGIN_IP: setting('50/15m', limit),
  /**
   * Failed sign-ins for one email, known or not (so the answer says nothing about existence),
   * from any IP. Above the lockout threshold: the lockout acts first on real accounts.
   */
  RATE_LIMIT_LOGIN_ACCOUNT: setting('10/15m', limit),
  /**
   * Failed sign-ins from one browser that has signed in to the account before (its device
   * cookie, OWASP's "device cookies"): counted apart from the account's, so guesses from
   * elsewhere cannot keep the owner's known browser out, while a stolen cookie gets few tries.
   */
  RATE_LIMIT_LOGIN_DEVICE: setting('10/15m', limit),
  /** Days a device cookie marks a browser as known to the account it signed in to. */
  LOGIN_DEVICE_COOKIE_DAYS: setting(365, int(1)),
  /**
   * Sign-in attempts one process checks at once for one account (or device cookie) and for one
   * IP; more are refused (429), not queued. The shared counters bound the total; this bounds the
   * argon2 work a burst can queue, which the counters cannot while its guesses are in flight.
   */
  LOGIN_IN_FLIGHT_ACCOUNT: setting(2, int(1)),
  LOGIN_IN_FLIGHT_IP: setting(8, int(1)),
  /** Registrations from one IP: a family or a classroom fits, a bot filling the table does not. */
  RATE_LIMIT_REGISTER_IP: setting('10/1h', limit),
  /** Password reset requests; each sends an email, so a flood would make us a spammer. */
  RATE_LIMIT_RESET_IP: setting('10/1h', limit),
  RATE_LIMIT_RESET_ACCOUNT: setting('5/1h', limit),
  /** Verification email resends, for the same reason. */
  RATE_LIMIT_VERIFY_IP: setting('10/1h', limit),
  RATE_LIMIT_VERIFY_ACCOUNT: setting('5/1h', limit),
  /** Email-change requests per account; each mails a link to the address typed. */
  RATE_LIMIT_EMAIL_CHANGE: setting('5/1h', limit),
  /**
   * Token requests per confidential client id: 6000 a minute is 100/s. A public client (no
   * secret) is counted per client id and IP instead: anyone can send its requests, and a
   * per-client count would let one sender refuse every user of the app.
   */
  RATE_LIMIT_TOKEN_CLIENT: setting('6000/1m', limit),
  /**
   * Admin API calls per caller (a client, or a person through a client): room for a sync job,
   * not for a stolen token to page through every user in a minute.
   */
  RATE_LIMIT_ADMIN_API: setting('600/1m', limit),
  /** Failed sign-ins in a row that lock an account; 0 turns lockout off. */
  LOCKOUT_THRESHOLD: setting(5, int(0)),
  /**
   * How long each lock lasts: the first lock the first period, each further lock (without a
   * successful sign-in in between) the next, the last repeating. Short at first, for the owner
   * who mistyped; never forever, so an attacker cannot keep a real user out for good.
   */
  LOCKOUT_PERIODS: setting('1m,5m,15m,1h', durations),
  /** Days audit rows stay queryable in the table; older ones are archived then deleted. 0: keep. */
  AUDIT_RETENTION_DAYS: setting(365, int(0)),
  /** Folder of the gzip JSON Lines archives. Unset: DATA_DIR/audit-archive. */
  AUDIT_ARCHIVE_DIR: setting('', z.string()),
  /** Seconds between checks for audit rows past retention. */
  AUDIT_RETENTION_CHECK_SECONDS: setting(3600, int(1)),
  /**
   * Refused attempts (failure events) alike in kind, source and account within this window make
   * one audit row that counts them: the first is written in full, the rest add to its count.
   * Unauthenticated traffic then cannot grow the trail without bound. `off`: one row each.
   * At most 1d, so a row's window has closed before retention archives it.
   */
  AUDIT_FAILURE_WINDOW: setting(
    '15m',
    durationOrOff(86_400, 'a duration up to 1d, like 15m, or off'),
  ),

  /**
   * Second factors: off, optional (users may enrol an authenticator app or a passkey; then they
   * are asked at every sign-in) or required (everyone; enrolment at the next sign-in).
   */
  MFA_POLICY: setting('optional', z.enum(['off', 'optional', 'required'])),
  /** Comma-separated roles for which MFA is required even when MFA_POLICY is optional. */
  MFA_REQUIRED_ROLES: setting('', list),
  /** Let a passkey alone sign in (passwordless); off: passkeys are a second factor only. */
  PASSKEY_LOGIN: setting(false, bool),
  /**
   * How recent a full sign-in (password and, when the user has one, the second factor) must be
   * for a sensitive change in the account: email, password, factors, passkeys, recovery codes.
   * Older, the user signs in again first, as GitHub's "sudo mode" asks.
   */
  REAUTH_MAX_AGE: setting('5m', duration),
  /**
   * Users may delete their own account at /account/delete (GDPR Art. 17, the right to erasure).
   * Local accounts only, whatever this says: a directory user's account is the directory's, and
   * would come back at the next sign-in or sync.
   */
  ACCOUNT_DELETION: setting(true, bool),

  /**
   * A MaxMind GeoIP2 / GeoLite2 City or Country database (.mmdb) for the approximate location of
   * the IP addresses on the account's sessions and security activity pages. Read into memory at
   * start (a file that cannot be read stops the start); unset: no locations are shown.
   */
  GEOIP_DB: setting('', z.string()),

  /** Seconds between sweeps of expired protocol rows in PostgreSQL. */
  SWEEP_INTERVAL_SECONDS: setting(300, int(1)),
  /** Seconds in-flight requests get to finish after SIGTERM before the process exits. */
  SHUTDOWN_TIMEOUT_SECONDS: setting(10, int(0)),

  /** LDAP / Active Directory sign-in and sync: declared in ldap.ts, beside the code that reads them. */
  ...ldapSettings,
};

type Settings = typeof settings;

/** Each setting's default, by its variable's name. */
export const defaults = Object.fromEntries(
  Object.entries(settings).map(([name, { value }]) => [name, value]),
) as { [K in keyof Settings]: Settings[K]['value'] };

/** The environment's schema; its output, one value per variable, is what loadConfig builds on. */
export const schema = z.object(
  Object.fromEntries(Object.entries(settings).map(([name, { schema }]) => [name, schema])) as {
    [K in keyof Settings]: Settings[K]['schema'];
  },
);

export type Parsed = Read<Settings>;

/**
 * ARGON2_CONCURRENCY=0: one hash at once per CPU core, up to 8. Each hash is CPU-bound, so more
 * at once only time-slices them; and each holds its 19 MiB while it runs, so a burst of sign-ins
 * on a many-core host costs at most 8 × 19 MiB.
 */
export const defaultArgon2Concurrency = () => Math.min(availableParallelism(), 8);

/** PASSWORD_CHECK_THREADS=0: half the cores, at least one; the event loop and argon2 keep the rest. */
export const defaultPasswordCheckThreads = () =>
  Math.max(1, Math.floor(availableParallelism() / 2));
