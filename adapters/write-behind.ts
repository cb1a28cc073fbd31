import { setImmediate } from 'node:timers/promises';
import type { Knex } from 'knex';
import { MemoryStore, type Entry } from './memory.ts';
import { isRefusedRow } from './outages.ts';
import { modelsThat } from './models.ts';

const TABLE = 'oidc_payloads';
// Rows per statement. PGlite runs on the server's own thread: each statement holds the event loop
// (about 36 µs of CPU a row), so the rows go in small statements with other work between them.
const CHUNK = 200;
// Expired entries are dropped from memory this often.
const SWEEP_EVERY_MS = 60_000;

type Row = {
  model: string;
  id: string;
  payload: string | object;
  grant_id: string | null;
  account_id: string | null;
  uid: string | null;
  user_code: string | null;
  expires_at: Date | string | null;
  consumed_at: Date | string | null;
};

export type MemoryStoreOptions = {
  /** How long a change waits before it is written: at most this much is lost if the process dies. */
  intervalMs: number;
  /** Told of a write that failed (it is tried again at the next interval). */
  onError: (err: unknown) => void;
};

export type DurableMemoryStore = {
  store: MemoryStore;
  /** Writes what changed so far. */
  flush(): Promise<void>;
  /** Stops the timers and writes what is left. */
  close(): Promise<void>;
};

/**
 * A MemoryStore of the short-lived models over the embedded database: it starts with what the
 * database holds of them, and each change is written back within `intervalMs`, many rows to a
 * statement, so that a restart (or the CLI, which reads the database while the server is stopped)
 * finds sessions, codes and tokens as they were. Reads never wait for the database.
 */
export async function openMemoryStore(
  db: Knex,
  { intervalMs, onError }: MemoryStoreOptions,
): Promise<DurableMemoryStore> {
  const store = new MemoryStore();
  const rows: Row[] = await db(TABLE)
    .select('model', 'id', 'payload', 'grant_id', 'account_id', 'uid', 'user_code')
    .select('expires_at', 'consumed_at')
    .whereIn('model', modelsThat('shortLived'))
    .andWhere((q) => q.whereNull('expires_at').orWhere('expires_at', '>', db.fn.now()));
  for (const row of rows) store.restore(entryOf(row));

  // One write at a time, in the order asked: a later write always holds the later state.
  let queue: Promise<unknown> = Promise.resolve();
  const enqueue = (only?: string[]) => {
    const write = queue.then(() => writeChanges(db, store, onError, only));
    queue = write.catch(() => undefined);
    return write;
  };
  let pending: Promise<void> | undefined;
  const flush = () =>
    (pending ??= enqueue().finally(() => {
      pending = undefined;
    }));
  store.persist = async (keys) => {
    const due = store.writtenOf(keys);
    if (due.length) await enqueue(due).catch(onError);
  };
  let lastSweep = Date.now();
  const timer = setInterval(() => {
    if (Date.now() - lastSweep >= SWEEP_EVERY_MS) {
      lastSweep = Date.now();
      store.sweep();
    }
    if (store.hasChanges()) flush().catch(onError);
  }, intervalMs).unref();

  return {
    store,
    flush,
    async close() {
      clearInterval(timer);
      // What is still to write, written; a database that refuses it is reported, not waited on.
      for (let attempt = 0; attempt < 3 && store.hasChanges(); attempt++)
        await flush().catch(onError);
      await queue;
    },
  };
}

/**
 * Writes the changes (all, or those of `only`) in one transaction. When that fails, each is
 * tried alone: one row the database refuses must not hold back the others. A refused row is
 * kept in memory only (reported by model); at the first other failure, it and the rest wait for
 * the next write.
 */
async function writeChanges(
  db: Knex,
  store: MemoryStore,
  onError: (err: unknown) => void,
  only?: string[],
): Promise<void> {
  if (!store.hasChanges(only)) return;
  // Taken when the connection is this write's: the state written is the latest.
  let changes: Change[] = [];
  try {
    await db.transaction(async (trx) => {
      changes = store.takeChanges(only);
      await writeRows(trx, changes);
    });
    return;
  } catch (err) {
    if (changes.length <= 1 && !isRefusedRow(err)) {
      store.giveBack(changes.map((change) => change.key));
      throw err;
    }
  }
  const refusedModels = new Set<string>();
  const retry: string[] = [];
  let failure: unknown;
  for (const change of changes) {
    // The database is out of reach (not refusing a row): the rest wait too, untried.
    if (failure !== undefined) {
      retry.push(change.key);
      continue;
    }
    try {
      await db.transaction((trx) => writeRows(trx, [change]));
    } catch (err) {
      if (isRefusedRow(err)) refusedModels.add(change.model);
      else {
        retry.push(change.key);
        failure = err;
      }
    }
  }
  store.giveBack(retry);
  if (refusedModels.size)
    onError(
      new Error(`the database refused rows of ${[...refusedModels].join(', ')}; kept in memory`),
    );
  if (retry.length) throw failure;
}

type Change = ReturnType<MemoryStore['takeChanges']>[number];

async function writeRows(trx: Knex, changes: Change[]): Promise<void> {
  const gone = changes.filter((change) => !change.entry).map(({ model, id }) => ({ model, id }));
  const kept = changes.flatMap(({ entry }) => (entry ? [entry] : []));
  for (let i = 0; i < gone.length; i += CHUNK) {
    await trx.raw(DELETE, [JSON.stringify(gone.slice(i, i + CHUNK))]);
    await setImmediate();
  }
  for (let i = 0; i < kept.length; i += CHUNK) {
    await trx.raw(UPSERT, [
      `[${kept
        .slice(i, i + CHUNK)
        .map(rowJson)
        .join(',')}]`,
    ]);
    await setImmediate();
  }
}

// Many rows travel as one JSON parameter: in PGlite a quarter less CPU than a parameter per value.
const COLUMNS = 'model, id, payload, grant_id, account_id, uid, user_code, expires_at, consumed_at';
const UPSERT = `INSERT INTO ${TABLE} (${COLUMNS})
  SELECT ${COLUMNS} FROM json_populate_recordset(NULL::${TABLE}, ?::json)
  ON CONFLICT (model, id) DO UPDATE SET ${COLUMNS.split(', ')
    .slice(2)
    .map((column) => `${column} = excluded.${column}`)
    .join(', ')}`;
const DELETE = `DELETE FROM ${TABLE} p USING json_to_recordset(?::json) AS d(model text, id text)
  WHERE p.model = d.model AND p.id = d.id`;

const text = (value: string | undefined) => (value === undefined ? 'null' : JSON.stringify(value));
const isoTime = (ms: number | undefined) =>
  ms === undefined ? 'null' : `"${new Date(ms).toISOString()}"`;

/** An entry as a row of UPSERT's parameter; the payload's JSON goes in as it is. */
function rowJson(entry: Entry): string {
  const consumedMs = entry.consumed === undefined ? undefined : entry.consumed * 1000;
  return `{"model":${text(entry.model)},"id":${text(entry.id)},"payload":${entry.json},"grant_id":${text(entry.grantId)},"account_id":${text(entry.accountId)},"uid":${text(entry.uid)},"user_code":${text(entry.userCode)},"expires_at":${isoTime(entry.expiresAt)},"consumed_at":${isoTime(consumedMs)}}`;
}

const time = (value: Date | string | null) =>
  value === null ? undefined : new Date(value).getTime();

function entryOf(row: Row): Entry {
  const consumed = time(row.consumed_at);
  return {
    model: row.model,
    id: row.id,
    json: typeof row.payload === 'string' ? row.payload : JSON.stringify(row.payload),
    grantId: row.grant_id ?? undefined,
    accountId: row.account_id ?? undefined,
    uid: row.uid ?? undefined,
    userCode: row.user_code ?? undefined,
    expiresAt: time(row.expires_at),
    consumed: consumed === undefined ? undefined : consumed / 1000,
  };
}
