import { userInfo } from 'node:os';
import { deleteAccount } from '../users/account-deletion.ts';
import { unlockByAdmin } from '../protection/lockout.ts';
import { resetSecondFactors } from '../users/factor-reset.ts';
import { forcePasswordReset } from '../users/force-reset.ts';
import { need, UsageError, userByEmail, type Command } from './command.ts';

const managedByDirectory = (email: string) =>
  new UsageError(`${email} signs in with the directory: its password is changed there`);

/** latchkey users ... */
export const userCommands: Record<string, Command> = {
  'users create': {
    audit: 'user_created',
    async run({ v, users, generated }) {
      const password = generated(v.password);
      const user = await users.create({
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
    async run({ v, db, users, generated, recordWithin }) {
      const user = await userByEmail(users, v.email);
      const password = generated(v.password);
      const hash = await users.hashPassword(password);
      await db.transaction(async (trx) => {
        if (!(await users.setPasswordHash(user.id, hash, trx)))
          throw managedByDirectory(user.email);
        await recordWithin(trx);
      });
      return `password changed for ${user.email}${v.password ? '' : `\npassword: ${password}  <- shown once`}`;
    },
  },
  'users force-reset': {
    audit: 'password_reset_forced',
    async run(services) {
      const { v, config, users } = services;
      const user = await userByEmail(users, v.email);
      if (user.source === 'ldap') throw managedByDirectory(user.email);
      const { emailed, link } = await forcePasswordReset(user, services, services.recordWithin);
      const ends = `signed out everywhere; the old password no longer works`;
      return emailed
        ? `${user.email}: ${ends}; a reset link was emailed`
        : `${user.email}: ${ends}; the email could not be sent — give the owner this link (valid ${Math.round(config.emailLinks.resetTtl / 60)} minutes):\n${link}`;
    },
  },
  'users disable': {
    audit: 'user_disabled',
    async run({ v, users }) {
      const user = await userByEmail(users, v.email);
      await users.setDisabled(user.id, true);
      return `disabled ${user.email}`;
    },
  },
  'users reset-mfa': {
    // Recorded by the reset itself (mfa_reset, actor admin), in its transaction, about the user id.
    async run(services) {
      const user = await userByEmail(services.users, services.v.email);
      await resetSecondFactors(services, user, { type: 'admin', id: userInfo().username });
      return `${user.email}: authenticator app, recovery codes and passkeys removed`;
    },
  },
  'users delete': {
    // Recorded by the deletion itself (account_deleted, actor admin), in its transaction, about
    // the user id: the email the command names is what the deletion erases.
    async run(services) {
      const user = await userByEmail(services.users, services.v.email);
      // As on the owner's page, a directory user is deleted in the directory (else the next
      // sync brings it back). ACCOUNT_DELETION only governs the owner's page: an admin may.
      if (user.source === 'ldap')
        throw new UsageError(`${user.email} is a directory user: remove it in the directory`);
      await deleteAccount(services, user, { type: 'admin', id: userInfo().username });
      return `deleted ${user.id}: signed out everywhere, personal data erased, audit trail kept without the email; a confirmation was queued to the address`;
    },
  },
  'users unlock': {
    // Recorded by the lockout itself (account_unlocked, actor admin), not a second time here.
    async run(services) {
      const user = await userByEmail(services.users, services.v.email);
      await unlockByAdmin(services, user, { type: 'admin', id: userInfo().username });
      return `unlocked ${user.email}`;
    },
  },
};
