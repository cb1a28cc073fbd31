import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { INTERACTION_BUDGET_BYTES, MemoryStore } from '../../adapters/memory.ts';
import { MemoryAdapter } from '../../adapters/memory-adapter.ts';
import { openMemoryStore, type DurableMemoryStore } from '../../adapters/write-behind.ts';
import type { Db } from '../../server/db.ts';
import { tempEmbeddedDb } from '../support/embedded-db.ts';

// The embedded server keeps short-lived state in memory and writes it behind to PGlite
// (adapters/write-behind.ts): what a new process loads must be what the last one held.
describe('short-lived state written behind to the embedded database', () => {
  let db: Db;
  let cleanup: () => Promise<void>;
  const opened: DurableMemoryStore[] = [];
  const errors: unknown[] = [];
  const open = async (intervalMs = 60_000) => {
    const durable = await openMemoryStore(db, { intervalMs, onError: (e) => errors.push(e) });
    opened.push(durable);
    return durable;
  };

  beforeEach(async () => {
    ({ db, cleanup } = await tempEmbeddedDb());
    errors.length = 0;
  });
  afterEach(async () => {
    for (const durable of opened.splice(0)) await durable.close().catch(() => undefined);
    await cleanup();
  });

  it('loads in a new store what the last one held when it closed', async () => {
    const first = await open();
    const sessions = new MemoryAdapter(first.store, 'Session');
    const codes = new MemoryAdapter(first.store, 'AuthorizationCode');
    const tokens = new MemoryAdapter(first.store, 'AccessToken');
    await sessions.upsert('s1', { accountId: 'u1', uid: 'uid-1', loginTs: 1 }, 600);
    await codes.upsert('c1', { grantId: 'g1' }, 600);
    await codes.consume('c1');
    await tokens.upsert('gone', { grantId: 'g1' }, 600);
    await tokens.upsert('taken', { grantId: 'g2' }, 600);
    await first.flush();
    // Changes after a write are written too: a delete and a take remove the stored copies.
    await tokens.destroy('gone');
    await tokens.take('taken');
    await sessions.upsert('s1', { accountId: 'u1', uid: 'uid-1', loginTs: 2 }, 600);
    await first.close();

    const second = await open();
    const reloaded = (model: string) => new MemoryAdapter(second.store, model);
    expect(await reloaded('Session').findByUid('uid-1')).toMatchObject({ loginTs: 2 });
    expect((await reloaded('AuthorizationCode').find('c1'))?.consumed).toBeTypeOf('number');
    expect(await reloaded('AuthorizationCode').consumeOnce('c1')).toBe(false);
    expect(await reloaded('AccessToken').find('gone')).toBeUndefined();
    expect(await reloaded('AccessToken').find('taken')).toBeUndefined();
    expect(second.store.sessionsOf('u1').map((entry) => entry.id)).toEqual(['s1']);
    expect(errors).toEqual([]);
  });

  it('writes a consume through at once, but only of what is already in the database', async () => {
    const durable = await open();
    const codes = new MemoryAdapter(durable.store, 'AuthorizationCode');
    const stored = () => db('oidc_payloads').where({ model: 'AuthorizationCode' }).orderBy('id');
    await codes.upsert('written', { grantId: 'g1' }, 600);
    await durable.flush();
    await codes.upsert('fresh', { grantId: 'g1' }, 600);
    expect(await codes.consumeOnce('written')).toBe(true);
    expect(await codes.consumeOnce('fresh')).toBe(true);
    // A crash now loses the fresh code whole: no copy of it, spent or not, is there to restore.
    expect(await stored()).toEqual([
      expect.objectContaining({ id: 'written', consumed_at: expect.any(Date) }),
    ]);
    await durable.flush();
    expect(await stored()).toEqual([
      expect.objectContaining({ id: 'fresh', consumed_at: expect.any(Date) }),
      expect.objectContaining({ id: 'written', consumed_at: expect.any(Date) }),
    ]);
  });

  it('has nothing to write for an entry deleted before any write took it', async () => {
    const durable = await open();
    const interactions = new MemoryAdapter(durable.store, 'Interaction');
    await interactions.upsert('brief', { uid: 'b' }, 600);
    const statements: string[] = [];
    const onQuery = (query: { sql: string }) => statements.push(query.sql);
    db.on('query', onQuery);
    await interactions.destroy('brief');
    await durable.flush();
    db.off('query', onQuery);
    expect(statements).toEqual([]);
    await durable.close();
    expect(await db('oidc_payloads').where({ model: 'Interaction' })).toEqual([]);
  });

  // WebAuthn challenges are kept under fixed ids ("mfa:<uid>", "register:<user>:<binding>").
  it('does not bring back a taken challenge whose id was stored again while its delete waited', async () => {
    const first = await open();
    const challenges = new MemoryAdapter(first.store, 'WebAuthnChallenge');
    await challenges.upsert('mfa:uid-1', { challenge: 'c1' }, 300);
    await first.flush();
    // The first take's delete is written through, queued; the id is stored again meanwhile.
    const taking = challenges.take('mfa:uid-1');
    await challenges.upsert('mfa:uid-1', { challenge: 'c2' }, 300);
    const takingAgain = challenges.take('mfa:uid-1');
    expect((await taking)?.challenge).toBe('c1');
    expect((await takingAgain)?.challenge).toBe('c2');
    await first.close();
    const second = await open();
    expect(
      await new MemoryAdapter(second.store, 'WebAuthnChallenge').find('mfa:uid-1'),
    ).toBeUndefined();
  });

  it('does not bring back an interaction evicted, saved again and finished within one interval', async () => {
    const first = await open();
    const interactions = new MemoryAdapter(first.store, 'Interaction');
    await interactions.upsert('victim', { uid: 'victim', stage: 'login' }, 3600);
    await first.flush();
    // Another sender's flood evicts it (a delete left to the write-behind)...
    const mib = 'x'.repeat(1024 * 1024);
    const flood = INTERACTION_BUDGET_BYTES / mib.length + 1;
    for (let i = 0; i < flood; i++)
      await interactions.upsert(`flood${i}`, { uid: `f${i}`, mib }, 3600);
    expect(await interactions.find('victim')).toBeUndefined();
    // ...while the victim's request in flight saves it, then its resume destroys it.
    await interactions.upsert('victim', { uid: 'victim', stage: 'result' }, 3600);
    await interactions.destroy('victim');
    for (let i = 0; i < flood; i++) await interactions.destroy(`flood${i}`);
    await first.close();
    const second = await open();
    expect(await new MemoryAdapter(second.store, 'Interaction').find('victim')).toBeUndefined();
  });

  it('writes on its own within the interval, without a close', async () => {
    const first = await open(50);
    await new MemoryAdapter(first.store, 'Interaction').upsert('i1', { uid: 'i1' }, 600);
    await expect
      .poll(
        async () => (await db('oidc_payloads').where({ model: 'Interaction', id: 'i1' })).length,
      )
      .toBe(1);
  });

  it('does not load what expired while it was stopped', async () => {
    const first = await open();
    await new MemoryAdapter(first.store, 'Interaction').upsert('brief', { uid: 'b' }, 1);
    await first.close();
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const second = await open();
    expect(second.store.size).toBe(0);
  });

  it('keeps a change whose write failed, and writes it once the database takes it', async () => {
    const first = await open();
    await new MemoryAdapter(first.store, 'Session').upsert('kept', { accountId: 'u2' }, 600);
    await db.raw('ALTER TABLE oidc_payloads RENAME TO oidc_payloads_away');
    await expect(first.flush()).rejects.toThrow();
    await db.raw('ALTER TABLE oidc_payloads_away RENAME TO oidc_payloads');
    await first.close();
    expect(await db('oidc_payloads').where({ model: 'Session', id: 'kept' })).toHaveLength(1);
  });
});

describe('short-lived state in memory', () => {
  it('of concurrent consumes of a code, exactly one is the first', async () => {
    const store = new MemoryStore();
    const codes = new MemoryAdapter(store, 'AuthorizationCode');
    await codes.upsert('c2', { grantId: 'g3' }, 600);
    const firsts = await Promise.all(Array.from({ length: 5 }, () => codes.consumeOnce('c2')));
    expect(firsts.filter(Boolean)).toHaveLength(1);
  });

  it('keeps interactions, which anyone can make, within a budget: the oldest go first', async () => {
    const store = new MemoryStore();
    const interactions = new MemoryAdapter(store, 'Interaction');
    const sessions = new MemoryAdapter(store, 'Session');
    await sessions.upsert('signed-in', { accountId: 'u9' }, 600);
    const mib = 'x'.repeat(1024 * 1024);
    const count = INTERACTION_BUDGET_BYTES / mib.length + 8;
    for (let i = 0; i < count; i++) await interactions.upsert(`i${i}`, { uid: `u${i}`, mib }, 3600);
    expect(await interactions.find('i0')).toBeUndefined();
    expect(await interactions.find(`i${count - 1}`)).toBeDefined();
    expect(store.size).toBeLessThanOrEqual(INTERACTION_BUDGET_BYTES / mib.length + 1);
    expect(await sessions.find('signed-in')).toBeDefined();
  });
});
