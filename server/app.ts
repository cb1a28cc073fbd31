import { join } from 'node:path';
import Koa from 'koa';
import type { RedisClient } from '../adapters/redis.ts';
import type Provider from 'oidc-provider';
import type { Config } from '../config/load.ts';
import { createAdapterFactory } from '../adapters/index.ts';
import { accountRouter } from './account-pages/router.ts';
import { createAudit } from './audit/audit.ts';
import { createConsentStore } from './users/consents.ts';
import { createDeviceStore, newDeviceNotice } from './users/devices.ts';
import { createEmailTokens } from './users/email-tokens.ts';
import { createAccountSecuring } from './users/secure-account.ts';
import { createAccountSignOut } from './users/sign-out.ts';
import { createUserStore } from './users/store.ts';
import { createClientStore } from './clients/store.ts';
import type { Db } from './db.ts';
import { healthRouter } from './health.ts';
import { clientAddress } from './http/client-address.ts';
import { errorPages } from './http/errors.ts';
import { homePage } from './http/home.ts';
import { issuerOrigin } from './http/issuer-origin.ts';
import { requestId } from './http/request-id.ts';
import { securityHeaders } from './http/security-headers.ts';
import { staticFiles } from './http/static-files.ts';
import { interactionRouter } from './interactions/router.ts';
import { startKeyManager } from './keys/manager.ts';
import type { Logger } from './log.ts';
import { createMailer } from './mail/mailer.ts';
import { mailOptions } from './mail/options.ts';
import { createDeviceCookies } from './protection/device-cookies.ts';
import { createInFlight } from './protection/in-flight.ts';
import { createLockout } from './protection/lockout.ts';
import { createOwnerLock } from './protection/owner-lock.ts';
import { createRateLimits } from './protection/rate-limits.ts';
import { createSignInGuard } from './protection/sign-in-guard.ts';
import { createTokenLimit } from './protection/token-limit.ts';
import { secureAccountRouter } from './protection/secure-account-router.ts';
import { unlockRouter } from './protection/unlock-router.ts';
import { createProvider } from './provider.ts';
import { createDirectory } from './ldap/directory.ts';
import { createPasswordCheck } from './users/password-check.ts';
import { createChallenges } from './mfa/challenges.ts';
import { createMfa } from './mfa/mfa.ts';
import { createPasskeys } from './mfa/passkeys.ts';
import { createCsrf } from './security/csrf.ts';
import { createPasswordPolicy } from './security/password-policy.ts';
import { createPasswordHasher } from './security/passwords.ts';
import { createStrengthPool } from './security/strength-pool.ts';
import { createViews, VIEWS_DIR } from './views.ts';

export type AppDeps = { config: Config; db: Db; redis?: RedisClient | undefined; log: Logger };

/** Builds the whole HTTP application over the given services, without listening. */
export async function buildApp({ config, db, redis, log }: AppDeps) {
  const views = createViews(config.productName);
  const mailer = createMailer(mailOptions(config), { log });
  const passwords = createPasswordHasher(config.argon2);
  const users = createUserStore(db, passwords);
  const consents = createConsentStore(db);
  // zxcvbn on worker threads: a burst of new passwords must not stall the event loop.
  const strength = createStrengthPool(config.passwordCheck);
  const policy = createPasswordPolicy(config.passwordPolicy, { db, passwords, strength });
  const clients = createClientStore(db, config.sealingKey, config.clientCacheSeconds);
  const adapter = createAdapterFactory({
    db,
    redis,
    findClient: (id) => clients.findForProvider(id),
    refreshReuseGraceSeconds: config.refreshReuseGraceSeconds,
    timeoutMs: config.dependencyTimeoutMs,
  });

  const signOut = createAccountSignOut({ db, adapter });
  const csrf = createCsrf(config.cookieKeys[0]!);
  const tokens = createEmailTokens(db);
  const audit = createAudit(db, log, { failureWindowSeconds: config.auditFailureWindowSeconds });
  const limits = createRateLimits({ limits: config.rateLimits, db, redis, log });
  const tokenLimit = createTokenLimit(limits);
  const mfa = createMfa(db, config);
  const passkeys = createPasskeys(db, createChallenges(adapter), config);
  // Directory users sign in by a bind to LDAP / Active Directory (server/ldap/).
  const directory = config.ldap
    ? createDirectory({ config: config.ldap, db, log, audit, signOut })
    : undefined;
  const checkPassword = createPasswordCheck(users, directory);
  const lockout = createLockout({ db, config, tokens, mailer, audit, limits, log });
  const guard = createSignInGuard({
    limits,
    lockout,
    devices: createDeviceCookies(config.cookieKeys, config.signIn.deviceCookieDays),
    inFlight: createInFlight(),
    caps: config.signIn.inFlight,
  });
  const ownerLock = createOwnerLock(db);
  const securing = createAccountSecuring({
    mfa,
    tokens,
    users,
    ownerLock,
    signOut,
    audit,
  });

  // The provider is rebuilt when the signing keys change; requests use whichever is current.
  let provider: Provider | undefined;
  let providerCallback: ReturnType<Provider['callback']> | undefined;
  const keys = await startKeyManager({
    db,
    config,
    log,
    audit,
    onChange(view) {
      provider = createProvider(
        { config, adapter, users, consents, views, log, audit, mfa },
        view.jwks,
      );
      tokenLimit.countIn(provider);
      providerCallback = provider.callback();
    },
  });
  const currentProvider = () => provider as Provider;

  // Forwarded headers reach Koa only from named proxies: clientAddress() drops the rest.
  const app = new Koa({ proxy: true });
  app.silent = true;
  app.on('error', (err) => log.error({ err }, 'koa error'));

  // Every request passes these steps, in this order.
  app.use(clientAddress(config.trustProxy));
  app.use(issuerOrigin(config.issuer));
  app.use(requestId(log));
  app.use(securityHeaders({ hsts: config.issuer.startsWith('https://') }));
  app.use(errorPages(views));
  app.use(staticFiles(join(VIEWS_DIR, 'static')));
  app.use(homePage(views, config.productName));
  app.use(
    healthRouter({
      db,
      redis,
      log,
      ldap: directory && {
        check: () => directory.check(),
        required: config.ldap!.readinessRequired,
      },
    }).routes(),
  );
  app.use(
    interactionRouter({
      config,
      provider: currentProvider,
      users,
      consents,
      tokens,
      mailer,
      policy,
      signOut,
      views,
      csrf,
      log,
      audit,
      limits,
      lockout,
      ownerLock,
      guard,
      checkPassword,
      directory,
      passwords,
      mfa,
      passkeys,
      noticeSignIn: newDeviceNotice({
        devices: createDeviceStore(db),
        mailer,
        config,
        tokens,
      }),
    }).routes(),
  );
  app.use(
    accountRouter({
      config,
      tokens,
      provider: currentProvider,
      users,
      passwords,
      policy,
      signOut,
      mailer,
      views,
      csrf,
      log,
      audit,
      checkPassword,
      guard,
      limits,
      mfa,
      passkeys,
    }).routes(),
  );
  app.use(unlockRouter({ tokens, users, lockout, views, csrf }).routes());
  app.use(secureAccountRouter({ config, tokens, users, securing, views, csrf }).routes());
  app.use(tokenLimit.refuseBlocked);
  app.use(async (ctx) => {
    ctx.respond = false;
    await providerCallback!(ctx.req, ctx.res);
  });

  return {
    app,
    db,
    provider: currentProvider,
    keys,
    users,
    clients,
    passwords,
    strength,
    signOut,
    mailer,
    limits,
    lockout,
    directory,
  };
}

export type Latchkey = Awaited<ReturnType<typeof buildApp>>;
