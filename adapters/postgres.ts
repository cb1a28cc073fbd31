import type { Knex } from 'knex';
import { grantsChanged } from './grant-cache.ts';
import { DeadlineError } from './outages.ts';
import type { AccountStore, AdapterPayload, EndSessions, Stored, StorageAdapter } from './types.ts';

const TABLE = 'oidc_payloads';

type Row = { payload: AdapterPayload | string; consumed_at: Date | null };

// PGlite hands json columns back as text.
const parse = (payload: AdapterPayload | string): AdapterPayload =>
  typeof payload === 'string' ? JSON.parse(payload) : payload;

const expired = (expiresAt: Date | null) =>
  expiresAt !== null && new Date(expiresAt).getTime() <= Date.now();

/** Rows not yet expired (the sweep deletes expired ones later). */
const live = (db: Knex) => (q: Knex.QueryBuilder) =>
  q.whereNull('expires_at').orWhere('expires_at', '>', db.fn.now());

/** oidc-provider storage in one PostgreSQL table; each query hits the (model, id) key or an index. */
export class PostgresAdapter implements StorageAdapter {
  private readonly db: Knex;
  private readonly model: string;
  constructor(db: Knex, model: string) {
    this.db = db;
    this.model = model;
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
    const row = {
      model: this.model,
      id,
      payload: JSON.stringify(payload),
      grant_id: payload.grantId ?? null,
      user_code: payload.userCode ?? null,
      uid: payload.uid ?? null,
      account_id: payload.accountId ?? null,
      expires_at: expiresIn ? new Date(Date.now() + expiresIn * 1000) : null,
      consumed_at: null,
    };
    await this.db(TABLE).insert(row).onConflict(['model', 'id']).merge();
  }

  find(id: string): Promise<AdapterPayload | undefined> {
    return this.findWhere('id', id);
  }

  findByUid(uid: string): Promise<AdapterPayload | undefined> {
    return this.findWhere('uid', uid);
  }

  findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    return this.findWhere('user_code', userCode);
  }

  async consume(id: string): Promise<void> {
    await this.consumeOnce(id);
  }

  async consumeOnce(id: string, until?: number): Promise<boolean> {
    // The first consumption counts: a later one must not restart the refresh-token reuse grace
    // window. The application's clock, as the grace check compares with it.
    const spend = async (db: Knex) =>
      rowsAffected(
        await db(TABLE)
          .where({ model: this.model, id })
          .whereNull('consumed_at')
          .update({ consumed_at: new Date() }),
      ) > 0;
    if (until === undefined) return spend(this.db);
    // PostgreSQL gives up when the caller would (a lock wait, a slow disk), and an answer that
    // comes too late is rolled back: a consume the client was told had failed never lands.
    return this.db.transaction(async (trx) => {
      const left = Math.max(1, Math.floor(until - Date.now()));
      await trx.raw(`SET LOCAL statement_timeout = ${left}`);
      const first = await spend(trx);
      if (Date.now() >= until) throw new DeadlineError(`${this.model} consume`, left);
      return first;
    });
  }

  async destroy(id: string): Promise<void> {
    await this.db(TABLE).where({ model: this.model, id }).delete();
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    await this.db(TABLE).where({ model: this.model, grant_id: grantId }).delete();
  }

  async take(id: string): Promise<AdapterPayload | undefined> {
    const [row]: { payload: AdapterPayload | string; expires_at: Date | null }[] = await this.db(
      TABLE,
    )
      .where({ model: this.model, id })
      .delete()
      .returning(['payload', 'expires_at']);
    if (!row || expired(row.expires_at)) return undefined;
    return parse(row.payload);
  }

  private async findWhere(column: 'id' | 'uid' | 'user_code', value: string) {
    const row: Row | undefined = await this.db(TABLE)
      .select('payload', 'consumed_at')
      .where({ model: this.model, [column]: value })
      .andWhere(live(this.db))
      .first();
    if (!row) return undefined;
    const payload = parse(row.payload);
    if (row.consumed_at) payload.consumed = new Date(row.consumed_at).getTime() / 1000;
    return payload;
  }
}

/** An account's sessions and grants in PostgreSQL, by the (model, account_id) index. */
export class PostgresAccounts implements AccountStore {
  private readonly db: Knex;
  constructor(db: Knex) {
    this.db = db;
  }

  sessionsOf(accountId: string): Promise<Stored[]> {
    return this.ofAccount('Session', accountId);
  }

  grantsOf(accountId: string): Promise<Stored[]> {
    return this.ofAccount('Grant', accountId);
  }

  async endSessions(accountId: string, { except, only }: EndSessions = {}) {
    // A session signed in to by another account since has that account's id in the row.
    const query = this.db(TABLE).where({ model: 'Session', account_id: accountId });
    if (except) query.whereNot({ id: except });
    if (only) query.where({ id: only });
    const ended: { expires_at: Date | null }[] = await query.delete().returning('expires_at');
    return ended.filter((row) => !expired(row.expires_at)).length;
  }

  private async ofAccount(model: 'Session' | 'Grant', accountId: string): Promise<Stored[]> {
    const rows: { id: string; payload: AdapterPayload | string }[] = await this.db(TABLE)
      .select('id', 'payload')
      .where({ model, account_id: accountId })
      .andWhere(live(this.db));
    return rows.map(({ id, payload }) => ({ id, payload: parse(payload) }));
  }
}

/**
 * Revokes in `trx` every grant of the account but `except` (or `only` those named): its Grant row and whatever of it is
 * stored here (refresh tokens; without Redis, every token and code). Returns the grants' ids.
 * Grants always live in PostgreSQL (index.ts), and oidc-provider refuses any token or code whose
 * grant is gone: from the commit on none of them works, and what of theirs Redis holds is only
 * clean-up (AdapterFactory.revokeGrant).
 */
export async function revokeGrantsWithin(
  trx: Knex,
  accountId: string,
  { except = [], only }: { except?: string[]; only?: string[] } = {},
): Promise<string[]> {
  if (only && !only.length) return [];
  const grants = trx(TABLE).where({ model: 'Grant', account_id: accountId });
  if (except.length) grants.whereNotIn('id', except);
  if (only) grants.whereIn('id', only);
  return deleteGrants(trx, grants);
}

/** Like revokeGrantsWithin, for the grants of one client only (the user withdrew its consent). */
export function revokeClientGrantsWithin(
  trx: Knex,
  accountId: string,
  clientId: string,
): Promise<string[]> {
  const grants = trx(TABLE)
    .where({ model: 'Grant', account_id: accountId })
    .whereRaw(`payload->>'clientId' = ?`, [clientId]);
  return deleteGrants(trx, grants);
}

/** Like revokeGrantsWithin, for every grant of one client, whoever's (the client is deleted). */
export function revokeGrantsOfClientWithin(trx: Knex, clientId: string): Promise<string[]> {
  const grants = trx(TABLE)
    .where({ model: 'Grant' })
    .whereRaw(`payload->>'clientId' = ?`, [clientId]);
  return deleteGrants(trx, grants);
}

async function deleteGrants(trx: Knex, grants: Knex.QueryBuilder): Promise<string[]> {
  grantsChanged();
  try {
    const ids = ((await grants.delete().returning('id')) as { id: string }[]).map((r) => r.id);
    if (ids.length) await trx(TABLE).whereIn('grant_id', ids).delete();
    return ids;
  } finally {
    grantsChanged();
  }
}

/** Deletes expired rows of every model; returns how many. Run periodically by one process. */
export function sweepExpired(db: Knex, batch = SWEEP_BATCH): Promise<number> {
  return deleteInBatches(db, TABLE, 'expires_at < now()', [], batch);
}

// Batches keep each DELETE's locks short, and each statement well within the pool's statement
// timeout however many rows piled up (a timed-out one deletes nothing); the budget keeps one
// sweep from running for minutes.
const SWEEP_BATCH = 10_000;
const SWEEP_BUDGET_MS = 20_000;

/** Deletes the rows of `table` that the SQL condition `where` picks, a batch at a time. */
export async function deleteInBatches(
  db: Knex,
  table: string,
  where: string,
  bindings: readonly Knex.Value[] = [],
  batch = SWEEP_BATCH,
): Promise<number> {
  const started = Date.now();
  let total = 0;
  for (;;) {
    const result = await db.raw(
      `DELETE FROM ${table} WHERE ctid IN (SELECT ctid FROM ${table} WHERE ${where} LIMIT ?)`,
      [...bindings, batch],
    );
    const deleted = rowsAffected(result);
    total += deleted;
    if (deleted < batch || Date.now() - started > SWEEP_BUDGET_MS) return total;
  }
}

/** Rows a statement touched: pg gives a number (knex) or a result, PGlite a result object. */
export function rowsAffected(result: unknown): number {
  if (typeof result === 'number') return result;
  const r = result as { affectedRows?: number; rowCount?: number } | undefined;
  return Number(r?.affectedRows ?? r?.rowCount ?? 0);
}
