import { availableParallelism } from 'node:os';
import { z } from 'zod';
import {
  defaultArgon2Concurrency,
  defaultPasswordCheckThreads,
  defaults,
  schema,
  settings,
  type Parsed,
} from './defaults.ts';
import { ldapConfig } from './ldap.ts';
import { protectionConfig } from './protection.ts';

const resourceServer = z.object({
  audience: z.url(),
  scopes: z.string().default(''),
  format: z.enum(['jwt', 'opaque']).default('jwt'),
  accessTokenTTL: z.number().int().positive().optional(),
});

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.problems = problems;
  }
}

function deepFreeze<T>(value: T): Readonly<T> {
  if (value && typeof value === 'object' && !Buffer.isBuffer(value)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

/** Each variable read by its setting's schema, its default where unset or empty. */
function parse(env: Record<string, string | undefined>): Parsed {
  const input: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(defaults)) input[key] = env[key] || value;
  // A bad PORT is reported once, as PORT, not again as an invalid derived ISSUER.
  const port = settings.PORT.schema.safeParse(input.PORT);
  input.ISSUER ||= `http://localhost:${port.success ? port.data : defaults.PORT}`;
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  throw new ConfigError(
    parsed.error.issues.map(
      (i) => `${i.path.join('.')}: ${i.message} (got ${JSON.stringify(input[String(i.path[0])])})`,
    ),
  );
}

/** Validates the environment once; throws ConfigError naming every bad or missing setting. */
export function loadConfig(env: Record<string, string | undefined>) {
  const c = parse(env);
  const problems: string[] = [];
  const production = c.NODE_ENV === 'production';
  const sealingKey = Buffer.from(c.SEALING_KEY, 'base64');
  const cookieKeys = c.COOKIE_KEYS.split(',')
    .map((k) => k.trim())
    .filter(Boolean);
  if (production && !c.ISSUER.startsWith('https://'))
    problems.push('ISSUER: production requires an https:// issuer');
  // Latchkey serves plain HTTP; an https issuer means a TLS-terminating proxy in front, and
  // without trusting it every client would have the proxy's address (one rate-limit bucket).
  if (production && c.TRUST_PROXY.length === 0)
    problems.push(
      'TRUST_PROXY: production requires the addresses of the TLS-terminating proxies in front',
    );
  if (sealingKey.length !== 32)
    problems.push('SEALING_KEY: required, 32 random bytes in base64 (openssl rand -base64 32)');
  const mailTransport = c.MAIL_TRANSPORT || (production ? 'smtp' : 'outbox');
  // The outbox keeps every mail, live reset and sign-in links included, in files on disk.
  if (production && mailTransport === 'outbox')
    problems.push(
      'MAIL_TRANSPORT: production refuses outbox (it writes live sign-in links to disk); use smtp',
    );
  if (mailTransport === 'smtp' && !c.SMTP_HOST)
    problems.push(
      production
        ? 'SMTP_HOST: required to send email'
        : 'SMTP_HOST: required to send email (or MAIL_TRANSPORT=outbox to write .eml files instead)',
    );
  if (cookieKeys.length === 0 || cookieKeys.some((k) => k.length < 32))
    problems.push('COOKIE_KEYS: required, comma-separated secrets of at least 32 characters each');
  let resourceServers: z.output<typeof resourceServer>[] = [];
  try {
    resourceServers = z.array(resourceServer).parse(JSON.parse(c.RESOURCE_SERVERS));
  } catch {
    problems.push('RESOURCE_SERVERS: must be a JSON list of {"audience","scopes","format"}');
  }
  const ldap = ldapConfig(c, production, problems);
  const redis = c.REDIS_URL || c.REDIS_SENTINELS.length || c.REDIS_CLUSTER_NODES.length;
  const workers = c.WORKERS || (production && c.DATABASE_URL && redis ? availableParallelism() : 1);
  // PGlite's files are one process's: a second opening them would corrupt the database.
  if (workers > 1 && !c.DATABASE_URL)
    problems.push(
      'WORKERS: the embedded database (no DATABASE_URL) is opened by one process only; set WORKERS=1, or DATABASE_URL',
    );
  if (problems.length) throw new ConfigError(problems);
  // Pool sizes are the process tree's: each worker takes its share, and at least `least`.
  const share = (total: number, least: number) =>
    workers === 1 ? total : Math.max(least, Math.floor(total / workers));

  return deepFreeze({
    production,
    issuer: c.ISSUER.replace(/\/$/, ''),
    port: c.PORT,
    host: c.HOST,
    dataDir: c.DATA_DIR,
    databaseUrl: c.DATABASE_URL || undefined,
    /** Processes serving PORT (1: this one, no cluster); the pool sizes here are each one's. */
    workers,
    databasePoolMax: share(c.DATABASE_POOL_MAX, 2),
    dependencyTimeoutMs: c.DEPENDENCY_TIMEOUT_MS,
    redisUrl: c.REDIS_URL || undefined,
    redisSentinels: c.REDIS_SENTINELS,
    redisClusterNodes: c.REDIS_CLUSTER_NODES,
    redisSentinelName: c.REDIS_SENTINEL_NAME,
    sealingKey,
    cookieKeys,
    logLevel: c.LOG_LEVEL,
    /** The Prometheus listener; port undefined: metrics off. */
    metrics: {
      port: c.METRICS_PORT === '' ? undefined : c.METRICS_PORT,
      host: c.METRICS_HOST,
    },
    /** OpenTelemetry traces; endpoint undefined: tracing off (server/tracing/sdk.ts). */
    tracing: {
      endpoint: c.OTEL_EXPORTER_OTLP_ENDPOINT || undefined,
      serviceName: c.OTEL_SERVICE_NAME,
    },
    admin: { email: c.ADMIN_EMAIL.toLowerCase(), password: c.ADMIN_PASSWORD || undefined },
    demoClient: { enabled: c.DEMO_CLIENT && !production, redirectUri: c.DEMO_CLIENT_REDIRECT_URI },
    argon2: {
      memoryCost: c.ARGON2_MEMORY_KIB,
      timeCost: c.ARGON2_TIME_COST,
      parallelism: c.ARGON2_PARALLELISM,
      concurrency: share(c.ARGON2_CONCURRENCY || defaultArgon2Concurrency(), 1),
    },
    ttl: {
      accessToken: c.ACCESS_TOKEN_TTL,
      idToken: c.ID_TOKEN_TTL,
      authorizationCode: c.AUTHORIZATION_CODE_TTL,
      refreshToken: c.REFRESH_TOKEN_TTL,
      session: c.SESSION_TTL,
      interaction: c.INTERACTION_TTL,
      grant: c.GRANT_TTL,
      clientCredentials: c.CLIENT_CREDENTIALS_TTL,
    },
    refreshReuseGraceSeconds: c.REFRESH_REUSE_GRACE_SECONDS,
    keys: {
      alg: c.SIGNING_ALG,
      rotationDays: c.KEY_ROTATION_DAYS,
      announceSeconds: c.KEY_ANNOUNCE_SECONDS,
      refreshSeconds: c.KEY_REFRESH_SECONDS,
    },
    resourceServers,
    adminApi: { tokenFormat: c.ADMIN_API_TOKEN_FORMAT, accessTokenTTL: c.ADMIN_API_TOKEN_TTL },
    clientCacheSeconds: c.CLIENT_CACHE_SECONDS,
    clientSecretOverlapSeconds: c.CLIENT_SECRET_OVERLAP,
    sweepIntervalSeconds: c.SWEEP_INTERVAL_SECONDS,
    productName: c.PRODUCT_NAME,
    mail: {
      transport: mailTransport,
      from: c.MAIL_FROM,
      smtp: {
        host: c.SMTP_HOST,
        port: c.SMTP_PORT,
        secure: c.SMTP_SECURITY,
        ...(c.SMTP_USER && { user: c.SMTP_USER, password: c.SMTP_PASSWORD }),
        pool: c.SMTP_POOL,
      },
    },
    registration: {
      enabled: c.REGISTRATION_ENABLED,
      domains: c.REGISTRATION_DOMAINS,
      /** Managed by the directory: no self-registration there. */
      blockedDomains: c.REGISTRATION_BLOCKED_DOMAINS,
      verificationRequired: c.EMAIL_VERIFICATION_REQUIRED,
    },
    emailLinks: {
      verifyTtl: c.VERIFY_EMAIL_TTL,
      resetTtl: c.PASSWORD_RESET_TTL,
      inviteTtl: c.INVITATION_TTL,
      secureTtl: c.SECURE_ACCOUNT_LINK_TTL,
      resendSeconds: c.EMAIL_RESEND_SECONDS,
    },
    passwordPolicy: {
      minLength: c.PASSWORD_MIN_LENGTH,
      minStrength: c.PASSWORD_MIN_STRENGTH,
      historySize: c.PASSWORD_HISTORY,
    },
    /** The worker threads of the password strength check (server/security/strength-pool.ts). */
    passwordCheck: {
      threads: share(c.PASSWORD_CHECK_THREADS || defaultPasswordCheckThreads(), 1),
      queue: c.PASSWORD_CHECK_QUEUE,
    },
    shutdownTimeoutSeconds: c.SHUTDOWN_TIMEOUT_SECONDS,
    ...protectionConfig(c),
    mfa: {
      /**
       * off: no second factor anywhere. optional: users may enrol; those who did are asked at
       * each sign-in. required: everyone must, and enrols at the next sign-in if not yet.
       */
      policy: c.MFA_POLICY,
      /** With optional: users with any of these roles are treated as under `required`. */
      requiredRoles: c.MFA_REQUIRED_ROLES,
      /** A passkey alone may sign in (passwordless), not only as a second factor. */
      passkeyLogin: c.PASSKEY_LOGIN,
      /** Seconds a full sign-in counts as recent enough for a sensitive change in the account. */
      reauthMaxAgeSeconds: c.REAUTH_MAX_AGE,
    },
    /** Local users may delete their own account (never directory users). */
    accountDeletion: c.ACCOUNT_DELETION,
    /** The GeoIP database's path, opened at start (server/ip-location.ts). */
    geoipDb: c.GEOIP_DB || undefined,
    ldap,
  });
}

/** The settings as the server reads them: derived from what each setting's schema outputs. */
export type Config = ReturnType<typeof loadConfig>;
