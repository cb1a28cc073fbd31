import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import type { AccountSignOut } from '../users/sign-out.ts';
import type { User } from '../users/store.ts';
import type { Audit, AuditEvent } from '../audit/audit.ts';
import { isRefusedRow } from '../../adapters/outages.ts';
import { sameDn } from './dn.ts';
import type { DirectoryUser } from './entries.ts';

// Local users that mirror directory entries: found by the entry's stable id, so a renamed or
// moved entry, or a changed email, stays the same account (same `sub`, grants, consents).
// They have no local password: the directory checks it at every sign-in.

export type DirectoryState = 'active' | 'disabled' | 'missing';

export type LinkedUser = User & {
  source: 'local' | 'ldap';
  directory_id: string | null;
  directory_dn: string | null;
  /**
   * `disabled` or `missing` when the directory's doing disabled the account here; `active`
   * otherwise (`disabled` on an active one is an admin's doing).
   */
  directory_state: DirectoryState | null;
  directory_synced_at: Date | null;
};

type Patch = Partial<Record<keyof LinkedUser, unknown>>;

/** What bringing a local user in line with its entry takes. */
export type LinkPlan =
  | { action: 'create'; row: Patch }
  | { action: 'update' | 'disable' | 'enable'; user: LinkedUser; patch: Patch }
  | { action: 'unchanged'; user: LinkedUser }
  /** Disabled in the directory and never signed in here: nothing to create. */
  | { action: 'skip' };

/** Another local account holds this email, or a concurrent sign-in created the link first. */
export class DirectoryConflictError extends Error {
  readonly field: 'email' | 'directory_id';
  constructor(field: 'email' | 'directory_id') {
    super(
      field === 'email'
        ? 'another local account has this email address'
        : 'the entry was linked concurrently',
    );
    this.field = field;
  }
}

export const findLinked = (db: Knex, directoryId: string) =>
  db<LinkedUser>('users').where({ directory_id: directoryId }).first();

/** The local users linked to these entries (a page of a sync), by directory id. */
export async function findLinkedMany(db: Knex, ids: string[]): Promise<Map<string, LinkedUser>> {
  if (!ids.length) return new Map();
  // A PostgreSQL array: one parameter whatever the page's size.
  const found: LinkedUser[] = await db<LinkedUser>('users').whereRaw(
    'directory_id = ANY(?::text[])',
    [ids],
  );
  return new Map(found.map((u) => [u.directory_id!, u]));
}

const sameRoles = (a: string[], b: string[]) =>
  JSON.stringify([...a].sort()) === JSON.stringify([...b].sort());

/** Compares without touching the database; `apply` carries it out. */
export function planLink(
  local: LinkedUser | undefined,
  entry: DirectoryUser,
  roles: string[],
  emailVerified: boolean,
): LinkPlan {
  const claims = {
    email: entry.email,
    email_verified: emailVerified,
    name: entry.name ?? null,
    given_name: entry.givenName ?? null,
    family_name: entry.familyName ?? null,
  };
  if (!local) {
    if (entry.disabled) return { action: 'skip' };
    return {
      action: 'create',
      row: {
        ...claims,
        id: randomUUID(),
        password_hash: null,
        roles: JSON.stringify(roles),
        source: 'ldap',
        directory_id: entry.id,
        directory_dn: entry.dn,
        directory_state: 'active',
      },
    };
  }
  const patch: Patch = {};
  for (const [key, value] of Object.entries(claims))
    if (local[key as keyof typeof claims] !== value) patch[key as keyof LinkedUser] = value;
  if (!sameRoles(local.roles, roles)) patch.roles = JSON.stringify(roles);
  if (!local.directory_dn || !sameDn(local.directory_dn, entry.dn)) patch.directory_dn = entry.dn;

  // An account an admin disabled here stays as it is (its state stays `active`): only what the
  // directory disabled, the directory enables again.
  if (!entry.disabled && local.directory_state !== 'active')
    return {
      action: 'enable',
      user: local,
      patch: { ...patch, disabled: false, directory_state: 'active' },
    };
  return planUpdate(local, patch, entry.disabled);
}

/**
 * For a linked entry that is no user any more (it lost its email): the directory still decides
 * the account's roles, and disables it when it says so. Nothing else changes: a missing email
 * neither disables the account nor enables it again.
 */
export function planUnusable(local: LinkedUser, roles: string[], disabled: boolean): LinkPlan {
  return planUpdate(
    local,
    sameRoles(local.roles, roles) ? {} : { roles: JSON.stringify(roles) },
    disabled,
  );
}

/** `patch`, and the account disabled when the directory disabled it and it is not yet. */
function planUpdate(local: LinkedUser, patch: Patch, disabled: boolean): LinkPlan {
  if (disabled && !local.disabled)
    return {
      action: 'disable',
      user: local,
      patch: { ...patch, disabled: true, directory_state: 'disabled' },
    };
  return Object.keys(patch).length
    ? { action: 'update', user: local, patch }
    : { action: 'unchanged', user: local };
}

function conflict(err: unknown): never {
  const e = err as { code?: string; constraint?: string; message?: string };
  if (e.code === '23505')
    throw new DirectoryConflictError(
      `${e.constraint ?? e.message}`.includes('directory_id') ? 'directory_id' : 'email',
    );
  throw err;
}

/** What carrying out a plan did. */
export type Applied = {
  /** The user as it now is (undefined for `skip`). */
  user: LinkedUser | undefined;
  /** The id of the unverified local account that held the entry's email, now deleted. */
  replaced?: string | undefined;
};

/**
 * Deletes the local account holding `email` if it is unverified: nobody proved that mailbox, so
 * the directory, which vouches for it, wins. Deleting (rather than converting) it takes its
 * password, factors, consents and pending links with it (ON DELETE CASCADE); a verified
 * account is kept, and the caller gets the conflict. One statement: a verification landing
 * meanwhile either comes first (kept) or finds its token gone.
 */
async function replaceUnverifiedLocal(db: Knex, email: unknown): Promise<string | undefined> {
  if (typeof email !== 'string') return undefined;
  const [row] = await db('users')
    .whereRaw('lower(email) = ?', [email.trim().toLowerCase()])
    .where({ source: 'local', email_verified: false })
    .delete()
    .returning('id');
  return (row as { id: string } | undefined)?.id;
}

/** Carries out a plan, replacing an unverified local account that holds the entry's email. */
export async function applyLink(db: Knex, plan: LinkPlan): Promise<Applied> {
  try {
    switch (plan.action) {
      case 'skip':
        return { user: undefined };
      case 'unchanged':
        return { user: plan.user };
      case 'create':
        return await db.transaction(async (trx) => {
          const replaced = await replaceUnverifiedLocal(trx, plan.row.email);
          const [user] = await trx('users')
            .insert({ ...plan.row, directory_synced_at: trx.fn.now() })
            .returning('*');
          return { user: user as LinkedUser, replaced };
        });
      default:
        return await db.transaction(async (trx) => {
          const replaced = await replaceUnverifiedLocal(trx, plan.patch.email);
          const [user] = await trx('users')
            .where({ id: plan.user.id })
            .update({ ...plan.patch, directory_synced_at: trx.fn.now(), updated_at: trx.fn.now() })
            .returning('*');
          return { user: user as LinkedUser, replaced };
        });
    }
  } catch (err) {
    return conflict(err);
  }
}

/** Rows per INSERT: far below PostgreSQL's 65,535 parameters, whatever LDAP_PAGE_SIZE is. */
const CREATE_CHUNK = 1000;

/**
 * Carries out many `create` plans at once (a page of a first sync): deletes the unverified
 * local accounts holding their emails, as applyLink does one by one, and inserts them all, in
 * one savepoint. Undefined, and nothing done, when the database refuses any of them (a
 * conflict, a value it cannot hold): the caller then applies each on its own, so only those
 * entries fail.
 */
export async function createMany(
  db: Knex,
  plans: Extract<LinkPlan, { action: 'create' }>[],
): Promise<{ replaced: { replaced: string; userId: string }[] } | undefined> {
  const lower = (email: unknown) => String(email).trim().toLowerCase();
  try {
    return await db.transaction(async (trx) => {
      const deleted: { id: string; email: string }[] = await trx('users')
        // A PostgreSQL array, one parameter whatever the page's size.
        .whereRaw('lower(email) = ANY(?::text[])', [plans.map((p) => lower(p.row.email))])
        .where({ source: 'local', email_verified: false })
        .delete()
        .returning(['id', 'email']);
      const created = new Map<string, string>();
      for (let i = 0; i < plans.length; i += CREATE_CHUNK) {
        const rows = plans
          .slice(i, i + CREATE_CHUNK)
          .map((p) => ({ ...p.row, directory_synced_at: trx.fn.now() }));
        const inserted: { id: string; email: string }[] = await trx('users')
          .insert(rows)
          .returning(['id', 'email']);
        for (const u of inserted) created.set(lower(u.email), u.id);
      }
      return {
        replaced: deleted.map((d) => ({ replaced: d.id, userId: created.get(lower(d.email))! })),
      };
    });
  } catch (err) {
    // A duplicate, or a value the database refuses (a NUL): each entry alone, each error its own.
    if (isRefusedRow(err)) return undefined;
    throw err;
  }
}

/** After the replacing commits: ends what the replaced account had, and says so in the audit. */
export async function endReplaced(
  replaced: string,
  userId: string,
  { signOut, audit }: { signOut: AccountSignOut; audit: Audit },
): Promise<void> {
  await signOut.endSessions(replaced);
  await signOut.revokeGrants(replaced);
  await audit(
    directoryEvent('user_replaced', userId, {
      replaced,
      reason: 'unverified local account with the same email',
    }),
  );
}

/**
 * The ids of the entries a sync has listed, in a temporary table of its transaction rather
 * than in memory: a full sync of a large directory holds one page at a time.
 */
export type SeenIds = { table: string; count: number; add(ids: string[]): Promise<void> };

const SEEN_TABLE = 'directory_sync_seen';

export async function seenTable(trx: Knex.Transaction): Promise<SeenIds> {
  await trx.raw(
    `CREATE TEMPORARY TABLE IF NOT EXISTS ${SEEN_TABLE} (id text PRIMARY KEY) ON COMMIT DROP`,
  );
  await trx.raw(`TRUNCATE ${SEEN_TABLE}`);
  const seen: SeenIds = {
    table: SEEN_TABLE,
    count: 0,
    async add(ids) {
      if (!ids.length) return;
      await trx.raw(
        `INSERT INTO ${SEEN_TABLE} (id) SELECT unnest(?::text[]) ON CONFLICT (id) DO NOTHING`,
        [ids],
      );
      seen.count += ids.length;
    },
  };
  return seen;
}

/**
 * Disables, as missing, up to `limit` enabled directory users whose entries a full listing did
 * not name (`seenTable`), and returns them; none once all are. The entry is gone (deleted, or
 * moved out of the user base or filter). A batch at a time: a directory emptied by mistake
 * must not load every account at once.
 */
export async function markUnseenMissing(
  db: Knex,
  seenTable: string,
  limit: number,
): Promise<Pick<LinkedUser, 'id' | 'directory_id' | 'directory_dn'>[]> {
  return db('users')
    .whereIn('id', (unseen) =>
      unseen
        .select('id')
        .from('users')
        .where({ source: 'ldap', disabled: false })
        .whereNotExists((q) =>
          q.select(db.raw('1')).from(seenTable).whereRaw(`${seenTable}.id = users.directory_id`),
        )
        .limit(limit),
    )
    .update({
      disabled: true,
      directory_state: 'missing',
      directory_synced_at: db.fn.now(),
      updated_at: db.fn.now(),
    })
    .returning(['id', 'directory_id', 'directory_dn']);
}

/** An audit event the directory caused: no person acted. */
export function directoryEvent(type: string, userId: string, detail: Record<string, unknown>) {
  return {
    type,
    outcome: 'success',
    actor: { type: 'system' },
    subject: userId,
    detail,
  } satisfies AuditEvent;
}

/** Ends the sessions and revokes the grants of an account the directory disabled or removed. */
export async function signOutDisabled(
  userId: string,
  { signOut, audit }: { signOut: AccountSignOut; audit: Audit },
): Promise<void> {
  await signOut.endSessions(userId);
  await signOut.revokeGrants(userId);
  await audit(directoryEvent('user_disabled', userId, { reason: 'directory' }));
}

/** How many directory users are not disabled here: a guard against listing nobody by mistake. */
export async function countActiveLinked(db: Knex): Promise<number> {
  const row = await db('users')
    .where({ source: 'ldap', disabled: false })
    .count({ n: '*' })
    .first();
  return Number(row?.n ?? 0);
}
