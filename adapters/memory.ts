import type { AdapterPayload } from './types.ts';

/** One stored payload: its JSON as written (every read parses a copy of its own) and its keys. */
export type Entry = {
  model: string;
  id: string;
  json: string;
  grantId?: string | undefined;
  accountId?: string | undefined;
  uid?: string | undefined;
  userCode?: string | undefined;
  /** Epoch milliseconds; undefined: it does not expire. */
  expiresAt?: number | undefined;
  /** Epoch seconds of the first consume. */
  consumed?: number | undefined;
};

export const keyOf = (model: string, id: string) => `${model}:${id}`;
const live = (entry: Entry, now = Date.now()) =>
  entry.expiresAt === undefined || entry.expiresAt > now;

// The sessions listed per account (AccountStore); grants are never held here.
export const LISTED = 'Session';
// Interactions are made by anyone who opens an authorization URL, signed in or not, and last an
// hour: past this many bytes of them the oldest go (its sign-in starts again), so that requests
// cannot fill the process's memory. Logins in progress take 1-2 kB each.
export const INTERACTION_BUDGET_BYTES = 32 * 1024 * 1024;

/**
 * Short-lived protocol state in this process's memory, for the embedded database, where one
 * process owns the data: what Redis holds for many processes. Every step is synchronous, so each
 * is atomic (a consume, a take). What changed is noted for the write-behind (write-behind.ts),
 * which keeps a copy in the database so that a restart loses nothing.
 */
export class MemoryStore {
  private readonly entries = new Map<string, Entry>();
  /** `grant:<model>:<grantId>` and `account:<accountId>`: the keys of the entries that name them. */
  private readonly sets = new Map<string, Set<string>>();
  /** `uid:<model>:<uid>` and `userCode:<model>:<code>`: the key of the entry that has it. */
  private readonly lookups = new Map<string, string>();
  private changed = new Set<string>();
  /**
   * Keys put since no write took them: no copy of theirs is in the database. A consume or delete
   * of one need not be written through (a crash loses the entry whole), only written behind.
   */
  private readonly unwritten = new Set<string>();
  /** Interactions in the order they were stored, and the bytes of their JSON. */
  private readonly interactions = new Set<string>();
  private interactionBytes = 0;
  /**
   * Writes the keys' state to the database now: consumes and deletes, so that a crash cannot
   * bring back a spent code or an ended session (write-behind.ts sets it; never throws).
   */
  persist: (keys: string[]) => Promise<void> = async () => undefined;

  /** Stores a payload as it comes from oidc-provider; `expiresIn` seconds, 0: no expiry. */
  put(model: string, id: string, payload: AdapterPayload, expiresIn: number): void {
    this.set(
      {
        model,
        id,
        json: JSON.stringify(payload),
        grantId: payload.grantId,
        accountId: payload.accountId,
        uid: payload.uid,
        userCode: payload.userCode,
        expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : undefined,
      },
      true,
    );
  }

  /** Puts an entry back as it was stored (loading at start): not a change to write. */
  restore(entry: Entry): void {
    if (live(entry)) this.set(entry, false);
  }

  get(model: string, id: string): Entry | undefined {
    const key = keyOf(model, id);
    const entry = this.entries.get(key);
    if (entry && !live(entry)) {
      // Expired: the database's sweep deletes its copy.
      this.remove(key, false);
      return undefined;
    }
    return entry;
  }

  /** The entry that has the uid or user code. */
  lookup(kind: 'uid' | 'userCode', model: string, value: string): Entry | undefined {
    const key = this.lookups.get(`${kind}:${model}:${value}`);
    const entry = key === undefined ? undefined : this.entries.get(key);
    return entry && entry[kind] === value ? this.get(entry.model, entry.id) : undefined;
  }

  /** Marks the entry consumed; true for its first consume only. */
  consume(model: string, id: string): boolean {
    const entry = this.get(model, id);
    if (!entry || entry.consumed !== undefined) return false;
    entry.consumed = Date.now() / 1000;
    this.changed.add(keyOf(model, id));
    return true;
  }

  delete(model: string, id: string): Entry | undefined {
    const entry = this.get(model, id);
    if (entry) this.remove(keyOf(model, id), true);
    return entry;
  }

  /** Deletes the model's entries of the grant; returns their keys. */
  deleteOfGrant(model: string, grantId: string): string[] {
    const keys = [...(this.sets.get(`grant:${model}:${grantId}`) ?? [])];
    for (const key of keys) this.remove(key, true);
    return keys;
  }

  /** The live sessions that name the account. */
  sessionsOf(accountId: string): Entry[] {
    const found: Entry[] = [];
    for (const key of [...(this.sets.get(`account:${accountId}`) ?? [])]) {
      const entry = this.entries.get(key);
      if (entry && entry.accountId === accountId && this.get(entry.model, entry.id))
        found.push(entry);
    }
    return found;
  }

  /**
   * Entries changed since they were last taken (their latest state; undefined: deleted), for
   * writing: all of them, or those of `only`.
   */
  takeChanges(
    only?: string[],
  ): { key: string; model: string; id: string; entry: Entry | undefined }[] {
    let keys: Iterable<string>;
    if (only) {
      keys = only.filter((key) => this.changed.has(key));
      for (const key of keys) this.changed.delete(key);
    } else {
      keys = this.changed;
      this.changed = new Set();
    }
    for (const key of keys) this.unwritten.delete(key);
    return [...keys].map((key) => {
      const split = key.indexOf(':');
      return {
        key,
        model: key.slice(0, split),
        id: key.slice(split + 1),
        entry: this.entries.get(key),
      };
    });
  }

  /** Of the keys, those whose entry may have a copy in the database (written or being written). */
  writtenOf(keys: string[]): string[] {
    return keys.filter((key) => !this.unwritten.has(key));
  }

  /** Notes keys again whose write failed, unless changed since (the next write has them). */
  giveBack(keys: string[]): void {
    for (const key of keys) {
      this.changed.add(key);
      this.unwritten.delete(key);
    }
  }

  /** Whether anything (of `only`) changed since it was last taken. */
  hasChanges(only?: string[]): boolean {
    return only ? only.some((key) => this.changed.has(key)) : this.changed.size > 0;
  }

  /** Drops the expired entries (their copies are the database sweep's); returns how many. */
  sweep(now = Date.now()): number {
    let swept = 0;
    for (const [key, entry] of this.entries)
      if (!live(entry, now)) {
        this.remove(key, false);
        swept++;
      }
    return swept;
  }

  get size(): number {
    return this.entries.size;
  }

  private set(entry: Entry, changed: boolean): void {
    const key = keyOf(entry.model, entry.id);
    const existed = this.entries.has(key);
    if (existed) this.remove(key, false);
    this.entries.set(key, entry);
    if (entry.grantId) this.addTo(`grant:${entry.model}:${entry.grantId}`, key);
    if (entry.accountId && entry.model === LISTED) this.addTo(`account:${entry.accountId}`, key);
    if (entry.uid) this.lookups.set(`uid:${entry.model}:${entry.uid}`, key);
    if (entry.userCode) this.lookups.set(`userCode:${entry.model}:${entry.userCode}`, key);
    if (changed) {
      // A key with a change still to write (a delete of its stored copy) may be in the database.
      if (!existed && !this.changed.has(key)) this.unwritten.add(key);
      this.changed.add(key);
    }
    if (entry.model === 'Interaction') {
      this.interactions.add(key);
      this.interactionBytes += entry.json.length;
      for (const oldest of this.interactions) {
        if (this.interactionBytes <= INTERACTION_BUDGET_BYTES) break;
        this.remove(oldest, true);
      }
    }
  }

  private remove(key: string, changed: boolean): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.entries.delete(key);
    if (this.interactions.delete(key)) this.interactionBytes -= entry.json.length;
    if (entry.grantId) this.removeFrom(`grant:${entry.model}:${entry.grantId}`, key);
    if (entry.accountId && entry.model === LISTED)
      this.removeFrom(`account:${entry.accountId}`, key);
    for (const kind of ['uid', 'userCode'] as const) {
      const lookup = `${kind}:${entry.model}:${entry[kind]}`;
      if (entry[kind] && this.lookups.get(lookup) === key) this.lookups.delete(lookup);
    }
    // Deleted before any write took it: there is nothing to write.
    if (changed && this.unwritten.delete(key)) this.changed.delete(key);
    else if (changed) this.changed.add(key);
  }

  private addTo(set: string, key: string): void {
    let members = this.sets.get(set);
    if (!members) this.sets.set(set, (members = new Set()));
    members.add(key);
  }

  private removeFrom(set: string, key: string): void {
    const members = this.sets.get(set);
    if (members?.delete(key) && members.size === 0) this.sets.delete(set);
  }
}
