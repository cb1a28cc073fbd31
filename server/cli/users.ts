import { userInfo } from 'node:os';
import { createAdapterFactory } from '../../adapters/index.ts';
import { createEmailTokens } from '../users/email-tokens.ts';
import { forcePasswordReset } from '../users/force-reset.ts';
import { createAccountSignOut } from '../users/sign-out.ts';
import { createAudit } from '../audit/audit.ts';
import { createLogger } from '../log.ts';
import { createMailer } from '../mail/mailer.ts';
import { createMfa } from '../mfa/mfa.ts';
import { mailOptions } from '../mail/options.ts';
import { createLockout } from '../protection/lockout.ts';
import { createOwnerLock } from '../protection/owner-lock.ts';
import { createRateLimits } from '../protection/rate-limits.ts';
import { openRedis } from '../redis.ts';
import { createPasswordHistory } from '../security/password-history.ts';
import { createPasswordHasher } from '../security/passwords.ts';
import { need, UsageError, userByEmail, type Command } from './command.ts';

const managedByDirectory = (email: string) =>
  new UsageError(`${email} signs in with the directory: its password is changed there`);

/** latchkey users ... */
export const userCommands: Record<string, Command> = {
  'users create': {
    audit: 'user_created',
    async run({ v, users, generated }) {
      const password = generated(v.password);
      const user = await users().create({
        email: need(v.email, '--email'),
        password,
        name: v.name,
        roles: v.role,
        emailVerified: true,
      });
      return `created user ${user.id} (${user.email})${v.password ? '' : `\npassword: ${password}  <- shown once`}`;
    },
  },
  'users set-password': {
    audit: 'password_set_by_admin',
    async run({ v, users, generated }) {
      const store = users();
      const user = await userByEmail(store, v.email);
      const password = generated(v.password);
      if (!(await store.setPassword(user.id, password))) throw managedByDirectory(user.email);
      return `password changed for ${user.email}${v.password ? '' : `\npassword: ${password}  <- shown once`}`;
    },
  },
  'users force-reset': {
    audit: 'password_reset_forced',
    async run({ v, config, db, users }) {
      const store = users();
      const user = await userByEmail(store, v.email);
      if (user.source === 'ldap') throw managedByDirectory(user.email);
      const log = createLogger('warn');
      const redis = openRedis(config);
      const mailer = createMailer(mailOptions(config), { log });
      try {
        const passwords = createPasswordHasher(config.argon2);
        const adapter = createAdapterFactory({
          db,
          redis,
          findClient: async () => undefined,
          refreshReuseGraceSeconds: 0,
        });
        const { emailed, link } = await forcePasswordReset(user, {
          config,
          users: store,
          policy: createPasswordHistory(db, passwords, config.passwordPolicy.historySize),
          tokens: createEmailTokens(db),
          signOut: createAccountSignOut({ db, adapter }),
          mailer,
          log,
        });
        const ends = `signed out everywhere; the old password no longer works`;
        return emailed
          ? `${user.email}: ${ends}; a reset link was emailed`
          : `${user.email}: ${ends}; the email could not be sent — give the owner this link (valid ${Math.round(config.emailLinks.resetTtl / 60)} minutes):\n${link}`;
      } finally {
        await mailer.close();
        await redis?.quit();
      }
    },
  },
  'users disable': {
    audit: 'user_disabled',
    async run({ v, users }) {
      const store = users();
      const user = await userByEmail(store, v.email);
      await store.setDisabled(user.id, true);
      return `disabled ${user.email}`;
    },
  },
  'users reset-mfa': {
    audit: 'mfa_reset',
    async run({ v, config, db, users }) {
      const user = await userByEmail(users(), v.email);
      await createMfa(db, config).reset(user.id);
      return `${user.email}: authenticator app, recovery codes and passkeys removed`;
    },
  },
  'users unlock': {
    // Recorded by the lockout itself (account_unlocked, actor admin), not a second time here.
    async run({ v, config, db, users }) {
      const user = await userByEmail(users(), v.email);
      const log = createLogger('warn');
      const redis = openRedis(config);
      const mailer = createMailer(mailOptions(config), { log });
      try {
        const limits = createRateLimits({ limits: config.rateLimits, db, redis, log });
        const audit = createAudit(db, log);
        const lockout = createLockout({
          db,
          config,
          tokens: createEmailTokens(db),
          mailer,
          audit,
          limits,
          log,
        });
        // Also the lock the owner set with "this wasn't me", once the admin judges it safe.
        await createOwnerLock(db).release(user.id);
        await lockout.unlock(user, { type: 'admin', id: userInfo().username });
      } finally {
        await mailer.close();
        await redis?.quit();
      }
      return `unlocked ${user.email}`;
    },
  },
};
