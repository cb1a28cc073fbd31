import { availableParallelism } from 'node:os';

// Every setting, its environment variable and its default, with the reason where it is not
// obvious. The README's configuration table is written from this list.

export const defaults = {
  /** Public URL of the server; becomes the `iss` of every token. Unset: http://localhost:<PORT>. */
  ISSUER: '',
  PORT: 3000,
  HOST: '0.0.0.0',
  /** Folder for the embedded database, development secrets and the development mail outbox. */
  DATA_DIR: './data',
  /** PostgreSQL server; unset means PGlite (Postgres in WASM) in DATA_DIR/pglite. */
  DATABASE_URL: '',
  /** Connections per process; PostgreSQL's default max_connections is 100, so ~8 processes fit. */
  DATABASE_POOL_MAX: 10,
  /**
   * How long a request waits on PostgreSQL or Redis before it answers 503: long enough for a
   * Sentinel failover or a busy moment, short enough that an outage is not a hang.
   */
  DEPENDENCY_TIMEOUT_MS: 2000,
  /** Redis for short-lived protocol state (sessions, codes, opaque access tokens). */
  REDIS_URL: '',
  /**
   * Comma-separated host:port of Redis Sentinels; with it the master named REDIS_SENTINEL_NAME
   * is found through them (and followed on failover). REDIS_URL then gives only the password and
   * database number, if any.
   */
  REDIS_SENTINELS: '',
  REDIS_SENTINEL_NAME: 'mymaster',
  /** Comma-separated host:port of Redis Cluster nodes (any few; the rest are discovered). */
  REDIS_CLUSTER_NODES: '',
  /** 32 bytes, base64: seals client secrets and private signing keys (AES-256-GCM). */
  SEALING_KEY: '',
  /** Comma-separated secrets that sign cookies; the first signs, all verify (rotation). */
  COOKIE_KEYS: '',
  LOG_LEVEL: 'info',
  /**
   * Comma-separated addresses or CIDR ranges of the reverse proxies in front of Latchkey (or
   * loopback, uniquelocal). X-Forwarded-For is believed only from them: the client IP is the
   * last address in it that is not one of them. Empty: none. Host, X-Forwarded-Host and
   * X-Forwarded-Proto are believed from nobody: every URL derives from ISSUER.
   */
  TRUST_PROXY: '',

  /** First-start admin account; the password is printed once when not given. */
  ADMIN_EMAIL: 'admin@example.com',
  ADMIN_PASSWORD: '',
  /** Create a demo client on first start (development only). */
  DEMO_CLIENT: true,
  DEMO_CLIENT_REDIRECT_URI: 'http://localhost:8080/callback',

  // OWASP Password Storage Cheat Sheet, argon2id option 2: m=19 MiB, t=2, p=1. ~30 ms per hash
  // here; the argon2 package's own defaults (64 MiB, t=3, p=4) cost ~185 ms and cap logins at ~7/s.
  ARGON2_MEMORY_KIB: 19456,
  ARGON2_TIME_COST: 2,
  ARGON2_PARALLELISM: 1,
  /** Hashes computed at once; 0: one per CPU core, up to 8 (server/security/passwords.ts says why). */
  ARGON2_CONCURRENCY: 0,

  /** Seconds. Short access tokens bound how long a revoked grant's JWTs stay usable. */
  ACCESS_TOKEN_TTL: 600,
  ID_TOKEN_TTL: 3600,
  AUTHORIZATION_CODE_TTL: 60,
  REFRESH_TOKEN_TTL: 14 * 24 * 3600,
  SESSION_TTL: 14 * 24 * 3600,
  INTERACTION_TTL: 3600,
  GRANT_TTL: 365 * 24 * 3600,
  CLIENT_CREDENTIALS_TTL: 600,
  /**
   * A rotated refresh token presented again within this many seconds counts as a concurrent
   * refresh (two tabs, a retry after a lost response) and is honoured; after it, reuse is
   * treated as theft and revokes the whole grant.
   */
  REFRESH_REUSE_GRACE_SECONDS: 5,

  /** Algorithm of the key that signs ID tokens and JWT access tokens. ES256 signs ~10x faster than RS256. */
  SIGNING_ALG: 'ES256',
  /** Days between automatic key rotations; 0 turns the schedule off (the CLI still rotates). */
  KEY_ROTATION_DAYS: 90,
  /** Seconds a new key is published before it signs, so relying parties' JWKS caches pick it up. */
  KEY_ANNOUNCE_SECONDS: 24 * 3600,
  /** How often each process re-reads the key table, so every process agrees on the active key. */
  KEY_REFRESH_SECONDS: 60,

  /** JSON list of APIs for resource indicators: [{"audience","scopes","format":"jwt"|"opaque"}]. */
  RESOURCE_SERVERS: '[]',
  /** Seconds a client read from the database is reused; CLI changes take effect within it. */
  CLIENT_CACHE_SECONDS: 10,
  /** Named in pages and emails. */
  PRODUCT_NAME: 'Latchkey',
  /** smtp: deliver through SMTP_*. outbox: write .eml files to DATA_DIR/outbox and log the link. Unset: outbox outside production, smtp in production. */
  MAIL_TRANSPORT: '',
  MAIL_FROM: 'Latchkey <no-reply@localhost>',
  SMTP_HOST: '',
  /** 587 is the submission port (RFC 6409) with STARTTLS; 465 with SMTP_SECURITY=tls. */
  SMTP_PORT: 587,
  /** tls (implicit TLS), starttls (required, the default), none (a local relay only). */
  SMTP_SECURITY: 'starttls',
  SMTP_USER: '',
  SMTP_PASSWORD: '',
  /** Reuse SMTP connections across messages. */
  SMTP_POOL: true,

  /** Anyone may create an account from the login page. Off by default: an admin opens the door. */
  REGISTRATION_ENABLED: false,
  /** Comma-separated email domains allowed to register; empty allows any. */
  REGISTRATION_DOMAINS: '',
  /**
   * Comma-separated email domains whose people have accounts in the directory (LDAP / AD): they
   * may not self-register, so nobody can register a colleague's address ahead of them. (With
   * LDAP_BIND_DN set, an address the directory lists is never registered anyway; this also
   * covers direct-bind setups, which cannot search, and people not in the directory yet.)
   */
  REGISTRATION_BLOCKED_DOMAINS: '',
  /** A new account must verify its email address before it can sign in. */
  EMAIL_VERIFICATION_REQUIRED: true,
  /** Seconds a verification link works: a day covers "I'll check my mail tonight". */
  VERIFY_EMAIL_TTL: 24 * 3600,
  /** Seconds a password reset link works: short, since the link alone takes over the account. */
  PASSWORD_RESET_TTL: 30 * 60,
  /**
   * Seconds the "this wasn't me" link of a security email works (email changed, password
   * changed, new device). A week: the owner of a taken-over account may not read the old
   * mailbox every day, and the link only locks the account and, after an email change,
   * gives the address back to that old mailbox.
   */
  SECURE_ACCOUNT_LINK_TTL: 7 * 24 * 3600,
  /** Seconds before another verification or reset email goes to the same account. */
  EMAIL_RESEND_SECONDS: 60,

  /** Password policy; the reasons for each default are given in server/security/password-policy.ts. */
  PASSWORD_MIN_LENGTH: 12,
  /** zxcvbn score 0-4 a new password must reach. */
  PASSWORD_MIN_STRENGTH: 3,
  /** Previous passwords that may not be used again; 0 turns the check off. */
  PASSWORD_HISTORY: 5,
  /**
   * Worker threads that estimate password strength (zxcvbn, 5-160 ms of CPU each) off the event
   * loop, so a burst of registrations cannot stall every other request; 0: half the CPU cores,
   * at least one.
   */
  PASSWORD_CHECK_THREADS: 0,
  /**
   * Strength checks that may wait for a thread; beyond them the form asks to try again in a
   * moment. 16 waits at most ~2.5 s behind one thread at the worst case, ~0.3 s typically.
   */
  PASSWORD_CHECK_QUEUE: 16,

  // Rate limits, as count/duration (s, m, h, d) or off. Shared by every process: kept in Redis
  // when configured, else in PostgreSQL. Keys are latchkey:rl:<limit>:<ip, client or hashed email>.
  /**
   * Failed sign-ins from one IP. Counting failures, not attempts, keeps an office behind one NAT
   * signing in at 9 am unaffected, while a guesser gets 50 tries per 15 minutes from an address.
   */
  RATE_LIMIT_LOGIN_IP: '50/15m',
  /**
   * Failed sign-ins for one email, known or not (so the answer says nothing about existence),
   * from any IP. Above the lockout threshold: the lockout acts first on real accounts.
   */
  RATE_LIMIT_LOGIN_ACCOUNT: '10/15m',
  /**
   * Failed sign-ins from one browser that has signed in to the account before (its device
   * cookie, OWASP's "device cookies"): counted apart from the account's, so guesses from
   * elsewhere cannot keep the owner's known browser out, while a stolen cookie gets few tries.
   */
  RATE_LIMIT_LOGIN_DEVICE: '10/15m',
  /** Days a device cookie marks a browser as known to the account it signed in to. */
  LOGIN_DEVICE_COOKIE_DAYS: 365,
  /**
   * Sign-in attempts one process checks at once for one account (or device cookie) and for one
   * IP; more are refused (429), not queued. The shared counters bound the total; this bounds the
   * argon2 work a burst can queue, which the counters cannot while its guesses are in flight.
   */
  LOGIN_IN_FLIGHT_ACCOUNT: 2,
  LOGIN_IN_FLIGHT_IP: 8,
  /** Registrations from one IP: a family or a classroom fits, a bot filling the table does not. */
  RATE_LIMIT_REGISTER_IP: '10/1h',
  /** Password reset requests; each sends an email, so a flood would make us a spammer. */
  RATE_LIMIT_RESET_IP: '10/1h',
  RATE_LIMIT_RESET_ACCOUNT: '5/1h',
  /** Verification email resends, for the same reason. */
  RATE_LIMIT_VERIFY_IP: '10/1h',
  RATE_LIMIT_VERIFY_ACCOUNT: '5/1h',
  /** Email-change requests per account; each mails a link to the address typed. */
  RATE_LIMIT_EMAIL_CHANGE: '5/1h',
  /**
   * Token requests per confidential client id: 6000 a minute is 100/s. A public client (no
   * secret) is counted per client id and IP instead: anyone can send its requests, and a
   * per-client count would let one sender refuse every user of the app.
   */
  RATE_LIMIT_TOKEN_CLIENT: '6000/1m',
  /** Failed sign-ins in a row that lock an account; 0 turns lockout off. */
  LOCKOUT_THRESHOLD: 5,
  /**
   * How long each lock lasts: the first lock the first period, each further lock (without a
   * successful sign-in in between) the next, the last repeating. Short at first, for the owner
   * who mistyped; never forever, so an attacker cannot keep a real user out for good.
   */
  LOCKOUT_PERIODS: '1m,5m,15m,1h',
  /** Days audit rows stay queryable in the table; older ones are archived then deleted. 0: keep. */
  AUDIT_RETENTION_DAYS: 365,
  /** Folder of the gzip JSON Lines archives. Unset: DATA_DIR/audit-archive. */
  AUDIT_ARCHIVE_DIR: '',
  /** Seconds between checks for audit rows past retention. */
  AUDIT_RETENTION_CHECK_SECONDS: 3600,
  /**
   * Refused attempts (failure events) alike in kind, source and account within this window make
   * one audit row that counts them: the first is written in full, the rest add to its count.
   * Unauthenticated traffic then cannot grow the trail without bound. `off`: one row each.
   * At most 1d, so a row's window has closed before retention archives it.
   */
  AUDIT_FAILURE_WINDOW: '15m',

  /**
   * Second factors: off, optional (users may enrol an authenticator app or a passkey; then they
   * are asked at every sign-in) or required (everyone; enrolment at the next sign-in).
   */
  MFA_POLICY: 'optional',
  /** Comma-separated roles for which MFA is required even when MFA_POLICY is optional. */
  MFA_REQUIRED_ROLES: '',
  /** Let a passkey alone sign in (passwordless); off: passkeys are a second factor only. */
  PASSKEY_LOGIN: false,
  /**
   * How recent a full sign-in (password and, when the user has one, the second factor) must be
   * for a sensitive change in the account: email, password, factors, passkeys, recovery codes.
   * Older, the user signs in again first, as GitHub's "sudo mode" asks.
   */
  REAUTH_MAX_AGE: '5m',

  /** Seconds between sweeps of expired protocol rows in PostgreSQL. */
  SWEEP_INTERVAL_SECONDS: 300,
  /** Seconds in-flight requests get to finish after SIGTERM before the process exits. */
  SHUTDOWN_TIMEOUT_SECONDS: 10,

  // LDAP / Active Directory (config/ldap.ts; presets in server/ldap/presets.ts). An empty
  // filter or attribute takes the preset's.
  /** ldap://host[:port] or ldaps://host[:port]; empty turns directory sign-in off. */
  LDAP_URL: '',
  /** openldap (inetOrgPerson, groupOfNames, posixGroup, entryUUID) or ad (Active Directory). */
  LDAP_PRESET: 'openldap',
  /** Service account that searches for users and reads groups; needed for sync. */
  LDAP_BIND_DN: '',
  LDAP_BIND_PASSWORD: '',
  /** A file holding the bind password (a container secret); wins over LDAP_BIND_PASSWORD. */
  LDAP_BIND_PASSWORD_FILE: '',
  /** Bind users directly at this DN, `{login}` replaced (DN-escaped), instead of search-then-bind. */
  LDAP_BIND_TEMPLATE: '',
  /** Subtree holding the user entries, e.g. ou=people,dc=example,dc=org. */
  LDAP_USER_BASE: '',
  /** Which entries are users; add conditions (a group, not disabled) here. Preset when empty. */
  LDAP_USER_FILTER: '',
  /** Comma-separated attributes a login is compared with (equality only). Preset when empty. */
  LDAP_LOGIN_ATTRIBUTES: '',
  /** Subtree holding groups; empty: groups are not read and directory users get no roles. */
  LDAP_GROUP_BASE: '',
  LDAP_GROUP_FILTER: '',
  /** `<group DN>=<role>;...` or a JSON object; members of nested groups count as members. */
  LDAP_GROUP_ROLES: '',
  /** Attribute mapping overrides: stable id, username, email (comma-separated fallbacks), names. */
  LDAP_ATTR_ID: '',
  LDAP_ATTR_USERNAME: '',
  LDAP_ATTR_EMAIL: '',
  LDAP_ATTR_NAME: '',
  LDAP_ATTR_GIVEN_NAME: '',
  LDAP_ATTR_FAMILY_NAME: '',
  /** Upgrade ldap:// with StartTLS (RFC 4513 §3) before any bind; required in production off loopback. */
  LDAP_STARTTLS: false,
  /** PEM file of the CA(s) that sign the directory's certificate; empty: the system's CAs. */
  LDAP_CA_FILE: '',
  /** A sign-in page waits at most this for a TCP (and TLS) connection to the directory. */
  LDAP_CONNECT_TIMEOUT_MS: 3000,
  /** And this for each LDAP operation, so a hung directory fails fast as "unavailable". */
  LDAP_TIMEOUT_MS: 5000,
  /** Service-account connections kept per process; searches are short, a few serve many logins. */
  LDAP_POOL_SIZE: 4,
  /** Entries per page of a paged search (RFC 2696); under AD's default MaxPageSize of 1000. */
  LDAP_PAGE_SIZE: 500,
  /** Seconds between scheduled syncs (incremental by modification time); 0 turns them off. */
  LDAP_SYNC_INTERVAL_SECONDS: 300,
  /**
   * A scheduled sync lists everyone (and so notices deleted entries) when the last full one is
   * older than this; incremental runs see changed entries only.
   */
  LDAP_FULL_SYNC_INTERVAL_SECONDS: 3600,
  /** /readyz fails when the directory does not answer; off: reported, not failing. */
  LDAP_READINESS_REQUIRED: false,
  /** Directory emails count as verified; turn off when users may edit their own mail attribute. */
  LDAP_EMAIL_VERIFIED: true,
  /** Shown on the password reset and change pages to directory users. */
  LDAP_PASSWORD_MESSAGE:
    "Your password is managed by your organisation's directory: change or reset it there.",
} as const;

export type DefaultKey = keyof typeof defaults;

/**
 * ARGON2_CONCURRENCY=0: one hash at once per CPU core, up to 8. Each hash is CPU-bound, so more
 * at once only time-slices them; and each holds its 19 MiB while it runs, so a burst of sign-ins
 * on a many-core host costs at most 8 × 19 MiB.
 */
export const defaultArgon2Concurrency = () => Math.min(availableParallelism(), 8);

/** PASSWORD_CHECK_THREADS=0: half the cores, at least one; the event loop and argon2 keep the rest. */
export const defaultPasswordCheckThreads = () =>
  Math.max(1, Math.floor(availableParallelism() / 2));
