import type { Knex } from 'knex';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { Config } from '../../config/load.ts';
import type { User } from '../users/store.ts';
import { affected, type Db } from '../db.ts';
import { createRecoveryCodes } from './recovery-codes.ts';
import { createTotpFactors } from './totp.ts';

/** The authentication context classes Latchkey states in `acr` (and lists in discovery). */
export const ACR = {
  password: 'urn:latchkey:acr:pwd',
  mfa: 'urn:latchkey:acr:mfa',
} as const;

/** What a reset removed: the authenticator app, how many unused recovery codes, passkeys. */
export type RemovedFactors = { authenticatorApp: boolean; recoveryCodes: number; passkeys: number };

export type MfaState = {
  totp: boolean;
  passkeys: number;
  recoveryCodes: number;
  /** Policy demands a second factor of this user (MFA_POLICY=required, or one of its roles). */
  required: boolean;
};

/** RFC 8176 amr values after a second factor, added to those of the first. */
export function withSecondFactor(amr: string[] | undefined, factor: 'otp' | 'hwk' | 'swk') {
  return [...new Set([...(amr ?? ['pwd']), factor, 'mfa'])];
}

/** Second factors of users, and what the sign-in policy asks of each. */
export function createMfa(db: Db, config: Config) {
  const { policy, requiredRoles } = config.mfa;
  const totp = createTotpFactors(db, config.sealingKey, config.productName);
  const recovery = createRecoveryCodes(db, config.sealingKey);

  // A users row's second factors, as columns of a query on `users`.
  const factorColumns = () => [
    db.raw(
      'exists (select 1 from totp_factors t where t.user_id = users.id and t.confirmed_at is not null) as totp',
    ),
    db.raw('(select count(*) from webauthn_credentials w where w.user_id = users.id) as passkeys'),
    db.raw(
      '(select count(*) from recovery_codes r where r.user_id = users.id and r.used_at is null) as recovery',
    ),
  ];

  type FactorRow = { roles?: string[]; totp?: boolean; passkeys?: string; recovery?: string };

  function stateOf(row: FactorRow | undefined): MfaState {
    const roles: string[] = row?.roles ?? [];
    return {
      totp: !!row?.totp,
      passkeys: Number(row?.passkeys ?? 0),
      recoveryCodes: Number(row?.recovery ?? 0),
      required:
        policy === 'required' ||
        (policy === 'optional' && roles.some((r) => requiredRoles.includes(r))),
    };
  }

  async function state(userId: string): Promise<MfaState> {
    const row = await db('users')
      .where('users.id', userId)
      .select('roles', ...factorColumns())
      .first();
    return stateOf(row as FactorRow | undefined);
  }

  async function needed(userId: string, acrValues: unknown, known?: MfaState): Promise<boolean> {
    if (policy === 'off') return false;
    if (
      String(acrValues ?? '')
        .split(' ')
        .includes(ACR.mfa)
    )
      return true;
    const s = known ?? (await state(userId));
    return s.totp || s.passkeys > 0 || s.required;
  }

  /**
   * Whether a session signed in with `sessionAcr` still owes this user a second factor: the one
   * rule of the `mfa` prompt, which the account pages apply too.
   */
  async function owesSecondFactor(
    userId: string,
    sessionAcr: string | undefined,
    acrValues?: unknown,
    known?: MfaState,
  ): Promise<boolean> {
    return sessionAcr !== ACR.mfa && needed(userId, acrValues, known);
  }

  return {
    enabled: policy !== 'off',
    totp,
    recovery,
    state,

    /**
     * The check of the `mfa` prompt: the session has no second factor yet, and the user has one
     * (then it is always asked), or policy requires one, or the app asked for it in acr_values.
     */
    async secondFactorNeeded(ctx: KoaContextWithOIDC): Promise<boolean> {
      const accountId = ctx.oidc.session?.accountId;
      if (!accountId) return false;
      // findAccount, which runs first, may have read the factors with the user.
      const account = ctx.oidc.account as { accountId: string; mfa?: MfaState } | undefined;
      const known = account?.accountId === accountId ? account.mfa : undefined;
      return owesSecondFactor(accountId, ctx.oidc.acr, ctx.oidc.params?.acr_values, known);
    },

    owesSecondFactor,

    /** A user and their second factors, in one query (the authorization endpoint needs both). */
    async userWithState(userId: string): Promise<{ user: User; state: MfaState } | undefined> {
      const row = (await db('users')
        .where('users.id', userId)
        .select('users.*', ...factorColumns())
        .first()) as (User & FactorRow) | undefined;
      if (!row) return undefined;
      const { totp: _t, passkeys: _p, recovery: _r, ...user } = row;
      return { user, state: stateOf(row) };
    },

    /** Whether a sign-in of this user, for a request with these acr_values, needs a second factor. */
    needed,

    /**
     * Forgets the factors a user added after `since` (an intruder may have added them), and the
     * recovery codes too when no factor is left. Says how many went.
     */
    async forgetSince(userId: string, since: Date): Promise<number> {
      // `since` is this process's time, to the millisecond, and a factor's notice takes it just
      // after the factor is stored, by the database to the microsecond: compared whole, a factor
      // stored within that millisecond read as added after its own notice, which removed it.
      const added = `date_trunc('milliseconds', created_at) > ?`;
      const removed =
        affected(
          await db('totp_factors').where({ user_id: userId }).whereRaw(added, [since]).delete(),
        ) +
        affected(
          await db('webauthn_credentials')
            .where({ user_id: userId })
            .whereRaw(added, [since])
            .delete(),
        );
      const left = await state(userId);
      if (removed && !left.totp && !left.passkeys) await recovery.clear(userId);
      return removed;
    },

    /**
     * Forgets every factor of a user (the admin's reset, or a lost phone), in `trx` with its
     * record when given; says what went.
     */
    async reset(userId: string, trx: Knex = db): Promise<RemovedFactors> {
      const mine = (table: string) => trx(table).where({ user_id: userId });
      const app = await mine('totp_factors').whereNotNull('confirmed_at').delete();
      const codes = await mine('recovery_codes').whereNull('used_at').delete();
      const keys = await mine('webauthn_credentials').delete();
      // What is left is no factor (an authenticator never confirmed, used codes): it goes too.
      await mine('totp_factors').delete();
      await mine('recovery_codes').delete();
      return {
        authenticatorApp: affected(app) > 0,
        recoveryCodes: affected(codes),
        passkeys: affected(keys),
      };
    },
  };
}

export type Mfa = ReturnType<typeof createMfa>;
