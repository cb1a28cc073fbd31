import { z } from 'zod';
import { defaultArgon2Concurrency, defaultPasswordCheckThreads, defaults } from './defaults.ts';
import { ldapConfig, ldapSchema, type LdapConfig } from './ldap.ts';
import { mfaConfig, mfaSchema, type MfaConfig } from './mfa.ts';
import { protectionConfig, protectionSchema, type ProtectionConfig } from './protection.ts';

const bool = z
  .union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no'])])
  .transform((v) => v === true || v === 'true' || v === '1' || v === 'yes');
const int = (min: number) => z.coerce.number().int().min(min);
const optionalUrl = z.union([z.literal(''), z.url()]);

const resourceServer = z.object({
  audience: z.url(),
  scopes: z.string().default(''),
  format: z.enum(['jwt', 'opaque']).default('jwt'),
  accessTokenTTL: z.number().int().positive().optional(),
});

const schema = z.object({
  NODE_ENV: z.string().default('development'),
  ISSUER: z.url(),
  PORT: int(0).max(65535),
  HOST: z.string().min(1),
  DATA_DIR: z.string().min(1),
  DATABASE_URL: optionalUrl,
  DATABASE_POOL_MAX: int(1),
  DEPENDENCY_TIMEOUT_MS: int(100),
  REDIS_URL: optionalUrl,
  REDIS_SENTINELS: z
    .string()
    .regex(/^$|^[^,:\s]+:\d+(,[^,:\s]+:\d+)*$/, 'host:port, comma-separated'),
  REDIS_SENTINEL_NAME: z.string().min(1),
  REDIS_CLUSTER_NODES: z
    .string()
    .regex(/^$|^[^,:\s]+:\d+(,[^,:\s]+:\d+)*$/, 'host:port, comma-separated'),
  SEALING_KEY: z.string(),
  COOKIE_KEYS: z.string(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  ADMIN_EMAIL: z.email(),
  ADMIN_PASSWORD: z.string(),
  DEMO_CLIENT: bool,
  DEMO_CLIENT_REDIRECT_URI: z.url(),
  ARGON2_MEMORY_KIB: int(8192),
  ARGON2_TIME_COST: int(1),
  ARGON2_PARALLELISM: int(1),
  ARGON2_CONCURRENCY: int(0),
  ACCESS_TOKEN_TTL: int(1),
  ID_TOKEN_TTL: int(1),
  AUTHORIZATION_CODE_TTL: int(1),
  REFRESH_TOKEN_TTL: int(1),
  SESSION_TTL: int(1),
  INTERACTION_TTL: int(1),
  GRANT_TTL: int(1),
  CLIENT_CREDENTIALS_TTL: int(1),
  REFRESH_REUSE_GRACE_SECONDS: int(0),
  SIGNING_ALG: z.enum(['ES256', 'EdDSA', 'RS256']),
  KEY_ROTATION_DAYS: int(0),
  KEY_ANNOUNCE_SECONDS: int(0),
  KEY_REFRESH_SECONDS: int(1),
  RESOURCE_SERVERS: z.string(),
  CLIENT_CACHE_SECONDS: int(0),
  SWEEP_INTERVAL_SECONDS: int(1),
  PRODUCT_NAME: z.string().min(1),
  MAIL_TRANSPORT: z.enum(['', 'smtp', 'outbox']),
  MAIL_FROM: z.string().min(3),
  SMTP_HOST: z.string(),
  SMTP_PORT: int(1).max(65535),
  SMTP_SECURITY: z.enum(['tls', 'starttls', 'none']),
  SMTP_USER: z.string(),
  SMTP_PASSWORD: z.string(),
  SMTP_POOL: bool,
  REGISTRATION_ENABLED: bool,
  REGISTRATION_DOMAINS: z.string(),
  REGISTRATION_BLOCKED_DOMAINS: z.string(),
  EMAIL_VERIFICATION_REQUIRED: bool,
  VERIFY_EMAIL_TTL: int(60),
  PASSWORD_RESET_TTL: int(60),
  SECURE_ACCOUNT_LINK_TTL: int(3600),
  EMAIL_RESEND_SECONDS: int(0),
  PASSWORD_MIN_LENGTH: int(8).max(128),
  PASSWORD_MIN_STRENGTH: int(0).max(4),
  PASSWORD_HISTORY: int(0).max(24),
  PASSWORD_CHECK_THREADS: int(0).max(64),
  PASSWORD_CHECK_QUEUE: int(0),
  SHUTDOWN_TIMEOUT_SECONDS: int(0),
  ...protectionSchema,
  ...mfaSchema,
  ...ldapSchema,
});

export type Config = Readonly<{
  production: boolean;
  issuer: string;
  port: number;
  host: string;
  dataDir: string;
  databaseUrl: string | undefined;
  databasePoolMax: number;
  /** How long a request waits on PostgreSQL or Redis before answering 503. */
  dependencyTimeoutMs: number;
  redisUrl: string | undefined;
  redisSentinels: { host: string; port: number }[];
  redisSentinelName: string;
  redisClusterNodes: { host: string; port: number }[];
  sealingKey: Buffer;
  cookieKeys: string[];
  logLevel: string;
  admin: { email: string; password: string | undefined };
  demoClient: { enabled: boolean; redirectUri: string };
  argon2: { memoryCost: number; timeCost: number; parallelism: number; concurrency: number };
  ttl: {
    accessToken: number;
    idToken: number;
    authorizationCode: number;
    refreshToken: number;
    session: number;
    interaction: number;
    grant: number;
    clientCredentials: number;
  };
  refreshReuseGraceSeconds: number;
  keys: {
    alg: 'ES256' | 'EdDSA' | 'RS256';
    rotationDays: number;
    announceSeconds: number;
    refreshSeconds: number;
  };
  resourceServers: z.infer<typeof resourceServer>[];
  clientCacheSeconds: number;
  sweepIntervalSeconds: number;
  productName: string;
  mail: {
    transport: 'smtp' | 'outbox';
    from: string;
    smtp: {
      host: string;
      port: number;
      secure: 'tls' | 'starttls' | 'none';
      user?: string;
      password?: string;
      pool: boolean;
    };
  };
  registration: {
    enabled: boolean;
    domains: string[];
    /** Managed by the directory: no self-registration there. */
    blockedDomains: string[];
    verificationRequired: boolean;
  };
  emailLinks: { verifyTtl: number; resetTtl: number; secureTtl: number; resendSeconds: number };
  passwordPolicy: { minLength: number; minStrength: number; historySize: number };
  /** The worker threads of the password strength check (server/security/strength-pool.ts). */
  passwordCheck: { threads: number; queue: number };
  shutdownTimeoutSeconds: number;
}> &
  Readonly<ProtectionConfig> &
  Readonly<{ mfa: MfaConfig }> &
  Readonly<{ ldap: LdapConfig | undefined }>;

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.problems = problems;
  }
}

/** "a:1,b:2" → [{ host: 'a', port: 1 }, { host: 'b', port: 2 }] */
function hostPorts(list: string): { host: string; port: number }[] {
  return list
    .split(',')
    .filter(Boolean)
    .map((s) => ({
      host: s.slice(0, s.lastIndexOf(':')),
      port: Number(s.slice(s.lastIndexOf(':') + 1)),
    }));
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Buffer.isBuffer(value)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

/** Validates the environment once; throws ConfigError naming every bad or missing setting. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const input: Record<string, unknown> = { NODE_ENV: env.NODE_ENV };
  for (const [key, value] of Object.entries(defaults)) input[key] = env[key] || value;
  // A bad PORT is reported once, as PORT, not again as an invalid derived ISSUER.
  const port = int(0).max(65535).safeParse(input.PORT);
  input.ISSUER ||= `http://localhost:${port.success ? port.data : defaults.PORT}`;
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map(
        (i) =>
          `${i.path.join('.')}: ${i.message} (got ${JSON.stringify(input[String(i.path[0])])})`,
      ),
    );
  }
  const c = parsed.data;
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
  let resourceServers: Config['resourceServers'] = [];
  try {
    resourceServers = z.array(resourceServer).parse(JSON.parse(c.RESOURCE_SERVERS));
  } catch {
    problems.push('RESOURCE_SERVERS: must be a JSON list of {"audience","scopes","format"}');
  }
  const ldap = ldapConfig(c, production, problems);
  if (problems.length) throw new ConfigError(problems);

  return deepFreeze({
    production,
    issuer: c.ISSUER.replace(/\/$/, ''),
    port: c.PORT,
    host: c.HOST,
    dataDir: c.DATA_DIR,
    databaseUrl: c.DATABASE_URL || undefined,
    databasePoolMax: c.DATABASE_POOL_MAX,
    dependencyTimeoutMs: c.DEPENDENCY_TIMEOUT_MS,
    redisUrl: c.REDIS_URL || undefined,
    redisSentinels: hostPorts(c.REDIS_SENTINELS),
    redisClusterNodes: hostPorts(c.REDIS_CLUSTER_NODES),
    redisSentinelName: c.REDIS_SENTINEL_NAME,
    sealingKey,
    cookieKeys,
    logLevel: c.LOG_LEVEL,
    admin: { email: c.ADMIN_EMAIL.toLowerCase(), password: c.ADMIN_PASSWORD || undefined },
    demoClient: { enabled: c.DEMO_CLIENT && !production, redirectUri: c.DEMO_CLIENT_REDIRECT_URI },
    argon2: {
      memoryCost: c.ARGON2_MEMORY_KIB,
      timeCost: c.ARGON2_TIME_COST,
      parallelism: c.ARGON2_PARALLELISM,
      concurrency: c.ARGON2_CONCURRENCY || defaultArgon2Concurrency(),
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
    clientCacheSeconds: c.CLIENT_CACHE_SECONDS,
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
      domains: domainList(c.REGISTRATION_DOMAINS),
      blockedDomains: domainList(c.REGISTRATION_BLOCKED_DOMAINS),
      verificationRequired: c.EMAIL_VERIFICATION_REQUIRED,
    },
    passwordPolicy: {
      minLength: c.PASSWORD_MIN_LENGTH,
      minStrength: c.PASSWORD_MIN_STRENGTH,
      historySize: c.PASSWORD_HISTORY,
    },
    passwordCheck: {
      threads: c.PASSWORD_CHECK_THREADS || defaultPasswordCheckThreads(),
      queue: c.PASSWORD_CHECK_QUEUE,
    },
    emailLinks: {
      verifyTtl: c.VERIFY_EMAIL_TTL,
      resetTtl: c.PASSWORD_RESET_TTL,
      secureTtl: c.SECURE_ACCOUNT_LINK_TTL,
      resendSeconds: c.EMAIL_RESEND_SECONDS,
    },
    shutdownTimeoutSeconds: c.SHUTDOWN_TIMEOUT_SECONDS,
    ...protectionConfig(c, c.DATA_DIR),
    ...mfaConfig(c),
    ...ldap,
  });
}

/** "Example.com, b.test" → ['example.com', 'b.test']. */
const domainList = (text: string) =>
  text
    .split(',')
    .map((d) => d.trim().toLowerCase())
    .filter(Boolean);
