import { keyOf, LISTED, type Entry, type MemoryStore } from './memory.ts';
import type { AccountStore, AdapterPayload, EndSessions, Stored, StorageAdapter } from './types.ts';

// oidc-provider's storage over a MemoryStore: the embedded server's short-lived models.

function payloadOf(entry: Entry | undefined): AdapterPayload | undefined {
  if (!entry) return undefined;
  const payload = JSON.parse(entry.json) as AdapterPayload;
  if (entry.consumed !== undefined) payload.consumed = entry.consumed;
  return payload;
}

/** oidc-provider storage of one model in a MemoryStore. */
export class MemoryAdapter implements StorageAdapter {
  private readonly store: MemoryStore;
  private readonly model: string;
  constructor(store: MemoryStore, model: string) {
    this.store = store;
    this.model = model;
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
    this.store.put(this.model, id, payload, expiresIn);
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    return payloadOf(this.store.get(this.model, id));
  }

  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    return payloadOf(this.store.lookup('uid', this.model, uid));
  }

  async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    return payloadOf(this.store.lookup('userCode', this.model, userCode));
  }

  async consume(id: string): Promise<void> {
    await this.consumeOnce(id);
  }

  async consumeOnce(id: string): Promise<boolean> {
    const first = this.store.consume(this.model, id);
    if (first) await this.store.persist([keyOf(this.model, id)]);
    return first;
  }

  async destroy(id: string): Promise<void> {
    if (this.store.delete(this.model, id)) await this.store.persist([keyOf(this.model, id)]);
  }

  async take(id: string): Promise<AdapterPayload | undefined> {
    const taken = this.store.delete(this.model, id);
    if (taken) await this.store.persist([keyOf(this.model, id)]);
    return payloadOf(taken);
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    await this.store.persist(this.store.deleteOfGrant(this.model, grantId));
  }
}

/** An account's sessions in a MemoryStore (its grants live in the database). */
export class MemoryAccounts implements AccountStore {
  private readonly store: MemoryStore;
  constructor(store: MemoryStore) {
    this.store = store;
  }

  async sessionsOf(accountId: string): Promise<Stored[]> {
    return this.store.sessionsOf(accountId).map((entry) => ({
      id: entry.id,
      payload: payloadOf(entry)!,
    }));
  }

  async endSessions(accountId: string, { except, only }: EndSessions = {}): Promise<number> {
    const ended: string[] = [];
    for (const { id } of this.store.sessionsOf(accountId))
      if (id !== except && (only === undefined || id === only)) {
        this.store.delete(LISTED, id);
        ended.push(keyOf(LISTED, id));
      }
    await this.store.persist(ended);
    return ended.length;
  }

  async grantsOf(): Promise<Stored[]> {
    throw new Error('grants are not held in memory');
  }
}
