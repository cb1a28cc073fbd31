import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { withGrantCache } from '../../adapters/grant-cache.ts';
import { PostgresAdapter, revokeGrantsWithin } from '../../adapters/postgres.ts';
import type { StorageAdapter } from '../../adapters/types.ts';
import type { Db } from '../../server/db.ts';
import { tempEmbeddedDb } from '../support/embedded-db.ts';

// The embedded server keeps the grants it read in memory (adapters/grant-cache.ts): a revoked
// or changed grant must never be served from there.
describe('grants kept in memory over the embedded database', () => {
  let db: Db;
  let cleanup: () => Promise<void>;
  let grants: StorageAdapter;
  const statements: string[] = [];
  const onQuery = (query: { sql: string }) => statements.push(query.sql);
  // As oidc-provider stores one: its expiry in the payload too.
  const grant = (scope: string, ttl = 600) => ({
    accountId: 'u1',
    clientId: 'app',
    openid: { scope },
    exp: Math.floor(Date.now() / 1000) + ttl,
  });

  beforeEach(async () => {
    ({ db, cleanup } = await tempEmbeddedDb());
    grants = withGrantCache(new PostgresAdapter(db, 'Grant'));
    statements.length = 0;
    db.on('query', onQuery);
  });
  afterEach(async () => {
    db.off('query', onQuery);
    await cleanup();
  });

  it('reads a grant from the database once, then from memory', async () => {
    await grants.upsert('g1', grant('openid'), 600);
    expect(await grants.find('g1')).toMatchObject({ openid: { scope: 'openid' } });
    const before = statements.length;
    expect(await grants.find('g1')).toMatchObject({ openid: { scope: 'openid' } });
    expect(statements.length).toBe(before);
  });

  it('serves no grant revoked by SQL in a transaction, nor one changed since it was read', async () => {
    await grants.upsert('g1', grant('openid'), 600);
    await grants.upsert('g2', grant('openid'), 600);
    await grants.find('g1');
    await grants.find('g2');
    await grants.upsert('g2', grant('openid email'), 600);
    expect(await grants.find('g2')).toMatchObject({ openid: { scope: 'openid email' } });
    expect(await grants.find('g1')).toBeDefined();

    await db.transaction((trx) => revokeGrantsWithin(trx, 'u1', { only: ['g1'] }));
    expect(await grants.find('g1')).toBeUndefined();
    await grants.destroy('g2');
    expect(await grants.find('g2')).toBeUndefined();
  });

  it('does not keep a read that a revocation overtook', async () => {
    await grants.upsert('g1', grant('openid'), 600);
    // The read is under way when the revocation commits.
    const reading = grants.find('g1');
    await db.transaction((trx) => revokeGrantsWithin(trx, 'u1'));
    await reading;
    expect(await grants.find('g1')).toBeUndefined();
  });

  it('serves no grant past its expiry', async () => {
    await grants.upsert('brief', grant('openid', 1), 1);
    expect(await grants.find('brief')).toBeDefined();
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect(await grants.find('brief')).toBeUndefined();
  });
});
