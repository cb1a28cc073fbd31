import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { affected, type Db } from '../db.ts';
import type { PasswordHasher } from '../security/passwords.ts';
import { displayName } from './display-name.ts';

export type User = {
  id: string;
  email: string;
  email_verified: boolean;
  given_name: string | null;
  family_name: string | null;
  name: string | null;
  password_hash: string | null;
  roles: string[];
  disabled: boolean;
  /** ldap: linked to a directory entry, which holds the password (server/ldap/). */
  source: 'local' | 'ldap';
  /** Lockout state (server/protection/lockout.ts). */
  failed_sign_ins: number;
  lockouts: number;
  locked_until: Date | null;
  /** Set when the owner locked the account from a security email (server/protection/owner-lock.ts). */
  owner_locked_at: Date | null;
  /** Sessions that signed in before this (epoch seconds) no longer stand (session-rule.ts). */
  sessions_valid_from: number | string;
  /** Sessions ended one at a time: uid → epoch seconds until which it must not stand again. */
  ended_sessions: Record<string, number> | string;
  created_at: Date;
  updated_at: Date;
};

export type NewUser = {
  email: string;
  password?: string | undefined;
  name?: string | undefined;
  givenName?: string | undefined;
  familyName?: string | undefined;
  roles?: string[] | undefined;
  emailVerified?: boolean | undefined;
  /** The password already hashed (hashPassword), so a transaction need not wait on argon2. */
  passwordHash?: string | undefined;
};

export class UserExistsError extends Error {}

export function createUserStore(db: Db, passwords: PasswordHasher) {
  const byEmail = (email: string) =>
    db<User>('users').whereRaw('lower(email) = ?', [email.trim().toLowerCase()]);

  const store = {
    findById: (id: string) => db<User>('users').where({ id }).first(),
    findByEmail: (email: string) => byEmail(email).first(),

    /** `trx`: the transaction of the caller's other writes (its audit row), when given. */
    async create(input: NewUser, trx: Knex = db): Promise<User> {
      const row = {
        id: randomUUID(),
        email: input.email.trim(),
        email_verified: input.emailVerified ?? false,
        name: input.name ?? null,
        given_name: input.givenName ?? null,
        family_name: input.familyName ?? null,
        password_hash:
          input.passwordHash ?? (input.password ? await passwords.hash(input.password) : null),
        roles: JSON.stringify(input.roles ?? []),
      };
      try {
        const [user] = await trx('users').insert(row).returning('*');
        return user as User;
      } catch (err) {
        if ((err as { code?: string }).code === '23505')
          throw new UserExistsError(`a user with that email exists`);
        throw err;
      }
    },

    /** False for an unknown id, and for a directory user: its password lives in the directory. */
    async setPassword(id: string, password: string): Promise<boolean> {
      return store.setPasswordHash(id, await store.hashPassword(password));
    },

    /** The stored form of a password: argon2, slow, so taken before a transaction opens. */
    hashPassword: (password: string): Promise<string> => passwords.hash(password),

    /** setPassword with the hash already taken, in `trx` when given. */
    async setPasswordHash(id: string, hash: string, trx: Knex = db): Promise<boolean> {
      return (
        affected(
          await trx('users')
            .where({ id, source: 'local' })
            .update({ password_hash: hash, updated_at: trx.fn.now() }),
        ) > 0
      );
    },

    /** A new, verified address; UserExistsError when another account has it. */
    async setEmail(id: string, email: string): Promise<void> {
      try {
        await db('users')
          .where({ id })
          .update({ email, email_verified: true, updated_at: db.fn.now() });
      } catch (err) {
        if ((err as { code?: string }).code === '23505')
          throw new UserExistsError('a user with that email exists');
        throw err;
      }
    },

    /** No password works until a new one is set (a forced reset). */
    async clearPassword(id: string, trx: Knex = db): Promise<void> {
      await trx('users').where({ id }).update({ password_hash: null, updated_at: trx.fn.now() });
    },

    async setEmailVerified(id: string, trx: Knex = db): Promise<void> {
      await trx('users').where({ id }).update({ email_verified: true, updated_at: trx.fn.now() });
    },

    async setDisabled(id: string, disabled: boolean): Promise<boolean> {
      return (
        affected(await db('users').where({ id }).update({ disabled, updated_at: db.fn.now() })) > 0
      );
    },

    /**
     * The user for this email and password, or undefined. Unknown email, wrong password and a
     * disabled account cost one argon2 verify each and give the same answer (no enumeration).
     */
    async authenticate(email: string, password: string): Promise<User | undefined> {
      return store.verifyPassword(await store.findByEmail(email), password);
    },

    /** `authenticate` for a user already looked up (undefined when the email is unknown). */
    async verifyPassword(user: User | undefined, password: string): Promise<User | undefined> {
      const { ok, rehash } = await passwords.verify(user?.password_hash, password);
      if (!ok || !user || user.disabled) return undefined;
      if (rehash) await store.setPassword(user.id, password);
      return user;
    },

    count: async () => Number((await db('users').count({ n: '*' }).first())?.n ?? 0),
  };
  return store;
}

export type UserStore = ReturnType<typeof createUserStore>;

/** OIDC Core §5.1 standard claims for the scopes we support, plus `roles`. */
export function userClaims(user: User) {
  return {
    sub: user.id,
    email: user.email,
    email_verified: user.email_verified,
    name: displayName(user),
    given_name: user.given_name ?? undefined,
    family_name: user.family_name ?? undefined,
    updated_at: Math.floor(new Date(user.updated_at).getTime() / 1000),
    roles: user.roles,
  };
}
