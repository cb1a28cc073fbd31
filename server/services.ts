import type { Config } from '../config/load.ts';
import { createAdapterFactory } from '../adapters/index.ts';
import type { MemoryStore } from '../adapters/memory.ts';
import type { RedisClient } from '../adapters/redis.ts';
import { createAudit } from './audit/audit.ts';
import { clientChangeNews } from './clients/change-news.ts';
import { createClientStore } from './clients/store.ts';
import type { Db } from './db.ts';
import { createDirectory } from './ldap/directory.ts';
import type { Logger } from './log.ts';
import { createMailer } from './mail/mailer.ts';
import { mailOptions } from './mail/options.ts';
import { createChallenges } from './mfa/challenges.ts';
import { createMfa } from './mfa/mfa.ts';
import { createPasskeys } from './mfa/passkeys.ts';
import { createDeviceCookies } from './protection/device-cookies.ts';
import { createInFlight } from './protection/in-flight.ts';
import { createLockout } from './protection/lockout.ts';
import { createOwnerLock } from './protection/owner-lock.ts';
import { createRateLimits } from './protection/rate-limits.ts';
import { createSignInGuard } from './protection/sign-in-guard.ts';
import { createTokenLimit } from './protection/token-limit.ts';
import { createCsrf } from './security/csrf.ts';
import { createPasswordPolicy } from './security/password-policy.ts';
import { createPasswordHasher } from './security/passwords.ts';
import { createStrengthPool } from './security/strength-pool.ts';
import { createConsentStore } from './users/consents.ts';
import { createDeviceStore, newDeviceNotice } from './users/devices.ts';
import { createEmailTokens } from './users/email-tokens.ts';
import { factorNotice } from './users/factor-notice.ts';
import { createPasswordCheck } from './users/password-check.ts';
import { createAccountSecuring } from './users/secure-account.ts';
import { createAccountSignOut } from './users/sign-out.ts';
import { createUserStore } from './users/store.ts';
import { createViews } from './views.ts';
import { noIpLocation, type IpLocation } from './ip-location.ts';
import { NO_METRICS, type Metrics } from './metrics/metrics.ts';

/** What the graph is built over: opened (and closed) by whoever builds it. */
export type ServiceDeps = {
  config: Config;
  db: Db;
  redis?: RedisClient | undefined;
  /**
   * The embedded server's short-lived state (sessions, codes, tokens, rate-limit counters): in
   * this process, the one that owns the database (adapters/write-behind.ts).
   */
  memory?: MemoryStore | undefined;
  log: Logger;
  /** The GeoIP lookup, opened by the server at start (openIpLocation); none: no locations. */
  ipLocation?: IpLocation | undefined;
  /** What the services count into; off (no-op) unless the owner serves them (METRICS_PORT). */
  metrics?: Metrics | undefined;
};

/**
 * Every service of a Latchkey process, built one way for the server, the CLI and the tests.
 * Building it starts nothing in the background: the password-strength threads start at their
 * first check (or `strength.start()`), mail and directory connections at first use, sending from
 * the mail outbox at `mailer.start()`. close() ends what was started; the database and Redis
 * stay open for their owner to close.
 */
export function createServices({
  config,
  db,
  redis,
  memory,
  log,
  ipLocation,
  metrics = NO_METRICS,
}: ServiceDeps) {
  const views = createViews(config.productName);
  const mailer = createMailer(mailOptions(config), {
    log,
    db,
    sealingKey: config.sealingKey,
    metrics,
  });
  const passwords = createPasswordHasher(config.argon2, metrics);
  const users = createUserStore(db, passwords);
  const consents = createConsentStore(db);
  // zxcvbn on worker threads: a burst of new passwords must not stall the event loop.
  const strength = createStrengthPool(config.passwordCheck);
  const policy = createPasswordPolicy(config.passwordPolicy, { db, passwords, strength });
  const clients = createClientStore(
    db,
    config.sealingKey,
    config.clientCacheSeconds,
    clientChangeNews(redis, log),
  );
  const adapter = createAdapterFactory({
    db,
    redis,
    memory,
    findClient: (id) => clients.findForProvider(id),
    refreshReuseGraceSeconds: config.refreshReuseGraceSeconds,
    timeoutMs: config.dependencyTimeoutMs,
  });

  const signOut = createAccountSignOut({ db, adapter, log, sessionTtl: config.ttl.session });
  const csrf = createCsrf(config.cookieKeys[0]!);
  const tokens = createEmailTokens(db);
  const audit = createAudit(db, log, {
    failureWindowSeconds: config.auditFailureWindowSeconds,
    metrics,
  });
  const limits = createRateLimits({
    limits: config.rateLimits,
    db,
    redis,
    inProcess: !!memory,
    log,
    metrics,
  });
  const tokenLimit = createTokenLimit(limits, metrics);
  const mfa = createMfa(db, config);
  const passkeys = createPasskeys(db, createChallenges(adapter), config);
  // Directory users sign in by a bind to LDAP / Active Directory (server/ldap/).
  const directory = config.ldap
    ? createDirectory({ config: config.ldap, db, log, audit, signOut, metrics })
    : undefined;
  const checkPassword = createPasswordCheck(users, directory);
  const lockout = createLockout({ db, config, tokens, mailer, audit, limits, log, metrics });
  const guard = createSignInGuard({
    limits,
    lockout,
    devices: createDeviceCookies(config.cookieKeys, config.signIn.deviceCookieDays),
    inFlight: createInFlight(),
    caps: config.signIn.inFlight,
  });
  const ownerLock = createOwnerLock(db);
  const securing = createAccountSecuring({ mfa, tokens, users, ownerLock, signOut, audit });
  const notices = { mailer, config, tokens };

  return {
    config,
    db,
    redis,
    log,
    metrics,
    views,
    mailer,
    passwords,
    users,
    consents,
    strength,
    policy,
    clients,
    adapter,
    signOut,
    csrf,
    tokens,
    audit,
    limits,
    tokenLimit,
    mfa,
    passkeys,
    directory,
    checkPassword,
    lockout,
    guard,
    ownerLock,
    securing,
    /** The approximate location of an IP address, for the account pages (ip-location.ts). */
    ipLocation: ipLocation ?? noIpLocation,
    /** Tells the owner by email of a second factor added or removed (users/factor-notice.ts). */
    factorChanged: factorNotice(notices),
    /** After each password or passkey sign-in: the new-device notice (users/devices.ts). */
    noticeSignIn: newDeviceNotice({ ...notices, db, audit, devices: createDeviceStore(db) }),
    /** Ends what the graph started: waits for mail being stored or sent, ends threads and connections. */
    async close(): Promise<void> {
      await audit.flush();
      await mailer.close();
      await strength.close();
      directory?.close();
      clients.close();
    },
  };
}

export type Services = ReturnType<typeof createServices>;
