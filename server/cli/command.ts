import { randomBytes } from 'node:crypto';
import type { parseArgs } from 'node:util';
import type { Knex } from 'knex';
import type { UserStore } from '../users/store.ts';
import type { Services } from '../services.ts';
import { SIGNING_ALGS } from '../keys/store.ts';
import { ADMIN_SCOPES, isAdminScope, type AdminScope } from '../admin-api/scopes.ts';

/** Every option any command takes (node:util parseArgs). */
export const options = {
  email: { type: 'string' },
  password: { type: 'string' },
  name: { type: 'string' },
  role: { type: 'string', multiple: true },
  'redirect-uri': { type: 'string', multiple: true },
  'post-logout-redirect-uri': { type: 'string', multiple: true },
  'grant-type': { type: 'string', multiple: true },
  'cors-origin': { type: 'string', multiple: true },
  'id-token-alg': { type: 'string' },
  'api-scope': { type: 'string', multiple: true },
  public: { type: 'boolean' },
  'pkce-optional': { type: 'boolean' },
  since: { type: 'string' },
  until: { type: 'string' },
  user: { type: 'string' },
  login: { type: 'string' },
  'dry-run': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof options }>>['values'];

/** What a command gets: its options, the positional after the verb, and the services. */
export type CommandContext = Services & {
  v: Values;
  arg: string | undefined;
  /** The given password, or a new random one. */
  generated: (password: string | undefined) => string;
  /**
   * Writes the command's audit row in `trx`, the transaction of its change, so that the two
   * commit together or not at all; a command that does writes no row after it.
   */
  recordWithin: (trx: Knex.Transaction) => Promise<void>;
};

export type Command = {
  /** The audit event a successful run records (commands that change something). */
  audit?: string;
  /** The output to print, or undefined when the command wrote its own. */
  run(c: CommandContext): Promise<string | undefined>;
};

/** A mistake in the command line: reported with the usage text. */
export class UsageError extends Error {}

export function need<T>(value: T | undefined, what: string): T {
  if (value === undefined || value === '') throw new UsageError(`missing ${what}`);
  return value;
}

export const generatedPassword = (p: string | undefined) =>
  p ?? randomBytes(12).toString('base64url');

export function signingAlg(alg: string | undefined): string | undefined {
  if (alg !== undefined && !(SIGNING_ALGS as readonly string[]).includes(alg))
    throw new UsageError(`--id-token-alg must be one of ${SIGNING_ALGS.join(', ')}`);
  return alg;
}

/** An ISO 8601 date or time; anything else (Date would take "1" or "May 3") is refused. */
export function isoDate(text: string | undefined, what: string): Date | undefined {
  if (text === undefined) return undefined;
  const date = new Date(text);
  if (!/^\d{4}-\d{2}-\d{2}(T|$)/.test(text) || Number.isNaN(date.getTime()))
    throw new UsageError(`${what} must be an ISO 8601 date or time, like 2025-01-31T12:00:00Z`);
  return date;
}

/** The user with this email, or a usage error naming it. */
export async function userByEmail(users: UserStore, email: string | undefined) {
  const user = await users.findByEmail(need(email, '--email'));
  if (!user) throw new UsageError(`no user with email ${email}`);
  return user;
}

/** The admin API scopes given with --api-scope, each checked. */
export function apiScopes(scopes: string[] | undefined): AdminScope[] | undefined {
  for (const scope of scopes ?? [])
    if (!isAdminScope(scope))
      throw new UsageError(`--api-scope must be one of ${ADMIN_SCOPES.join(', ')}`);
  return scopes as AdminScope[] | undefined;
}
