import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmailTokens, type EmailTokens } from '../../server/users/email-tokens.ts';
import { createUserStore } from '../../server/users/store.ts';
import { closeDb, openDb, type Db } from '../../server/db.ts';
import { migrate } from '../../server/migrate.ts';
import { createPasswordHasher } from '../../server/security/passwords.ts';
import { freshPostgresUrl } from '../support/databases.ts';
import { tempEmbeddedDb } from '../support/embedded-db.ts';

const databases = {
  PGlite: tempEmbeddedDb,
  'PostgreSQL server': async () => {
    const db = await openDb({ databaseUrl: await freshPostgresUrl(), dataDir: '', poolMax: 4 });
    await migrate(db);
    return { db, cleanup: () => closeDb(db) };
  },
};

describe.each(Object.keys(databases))('single-use tokens for emailed links on %s', (name) => {
  let db: Db;
  let cleanup: () => Promise<void>;
  let tokens: EmailTokens;
  let userId: string;
  beforeAll(async () => {
    ({ db, cleanup } = await databases[name as keyof typeof databases]());
    tokens = createEmailTokens(db);
    const users = createUserStore(
      db,
      createPasswordHasher({ memoryCost: 8192, timeCost: 1, parallelism: 1 }),
    );
    userId = (await users.create({ email: 'links@example.test' })).id;
  });
  afterAll(() => cleanup());

  it('redeems once for its purpose, with the data it carries, and stores only a hash', async () => {
    const token = await tokens.issue(userId, 'reset_password', 60, { interaction: 'abc' });
    const { rows } = await db.raw('SELECT token_hash FROM email_tokens');
    expect(rows.map((r: { token_hash: string }) => r.token_hash)).not.toContain(token);
    expect(await tokens.redeem(token, 'reset_password')).toEqual({
      ok: true,
      userId,
      data: { interaction: 'abc' },
    });
    expect(await tokens.redeem(token, 'reset_password')).toEqual({ ok: false, reason: 'used' });
  });

  it('refuses an expired, a tampered and a cross-purpose token', async () => {
    const expired = await tokens.issue(userId, 'verify_email', 0);
    expect(await tokens.redeem(expired, 'verify_email')).toEqual({ ok: false, reason: 'expired' });
    const token = await tokens.issue(userId, 'verify_email', 60);
    const tampered = (token[0] === 'A' ? 'B' : 'A') + token.slice(1);
    expect(await tokens.redeem(tampered, 'verify_email')).toEqual({ ok: false, reason: 'invalid' });
    expect(await tokens.redeem('not a token', 'verify_email')).toEqual({
      ok: false,
      reason: 'invalid',
    });
    expect(await tokens.redeem(token, 'reset_password')).toEqual({ ok: false, reason: 'invalid' });
    expect((await tokens.redeem(token, 'verify_email')).ok).toBe(true);
  });

  it('using one token invalidates the others of its kind, not those of another purpose', async () => {
    const first = await tokens.issue(userId, 'reset_password', 60);
    const second = await tokens.issue(userId, 'reset_password', 60);
    const verify = await tokens.issue(userId, 'verify_email', 60);
    expect((await tokens.redeem(second, 'reset_password')).ok).toBe(true);
    expect(await tokens.redeem(first, 'reset_password')).toEqual({ ok: false, reason: 'used' });
    expect((await tokens.redeem(verify, 'verify_email')).ok).toBe(true);
  });

  it('with keepEarlier, using a token leaves the earlier ones of its kind usable, not the later', async () => {
    const earlier = await tokens.issue(userId, 'restore_email', 60, { email: 'first@x.test' });
    await new Promise((r) => setTimeout(r, 5));
    const middle = await tokens.issue(userId, 'restore_email', 60, { email: 'second@x.test' });
    await new Promise((r) => setTimeout(r, 5));
    const later = await tokens.issue(userId, 'restore_email', 60, { email: 'third@x.test' });
    expect((await tokens.redeem(middle, 'restore_email', { keepEarlier: true })).ok).toBe(true);
    expect(await tokens.redeem(later, 'restore_email')).toEqual({ ok: false, reason: 'used' });
    expect(await tokens.redeem(earlier, 'restore_email')).toMatchObject({
      ok: true,
      data: { email: 'first@x.test' },
    });
  });

  it('revokes every unused token of a user but the purposes kept', async () => {
    const reset = await tokens.issue(userId, 'reset_password', 60);
    const change = await tokens.issue(userId, 'change_email', 60);
    const restore = await tokens.issue(userId, 'restore_email', 60);
    expect(await tokens.revokeAll(userId, ['restore_email'])).toBeGreaterThanOrEqual(2);
    expect(await tokens.redeem(reset, 'reset_password')).toEqual({ ok: false, reason: 'used' });
    expect(await tokens.redeem(change, 'change_email')).toEqual({ ok: false, reason: 'used' });
    expect((await tokens.redeem(restore, 'restore_email')).ok).toBe(true);
  });

  it('lets only one of two simultaneous redemptions succeed', async () => {
    const token = await tokens.issue(userId, 'reset_password', 60);
    const results = await Promise.all([
      tokens.redeem(token, 'reset_password'),
      tokens.redeem(token, 'reset_password'),
    ]);
    expect(results.filter((r) => r.ok)).toHaveLength(1);
  });

  it('sweeps, in the periodic sweep transaction, the tokens expired over a day ago only', async () => {
    const old = await tokens.issue(userId, 'verify_email', 60);
    const recent = await tokens.issue(userId, 'verify_email', 60);
    // Stored by the hash only (email-tokens.ts).
    const hashOf = (token: string) => createHash('sha256').update(token).digest('base64url');
    await db('email_tokens')
      .where({ token_hash: hashOf(old) })
      .update({ expires_at: new Date(Date.now() - 25 * 3600 * 1000) });
    expect(await db.transaction((trx) => tokens.sweep(trx))).toBe(1);
    expect(await db('email_tokens').where({ token_hash: hashOf(old) })).toHaveLength(0);
    expect(await db('email_tokens').where({ token_hash: hashOf(recent) })).toHaveLength(1);
  });

  it('tells how long ago the last token of a purpose was sent', async () => {
    expect(await tokens.secondsSinceLast('nobody', 'verify_email')).toBeUndefined();
    const since = await tokens.secondsSinceLast(userId, 'verify_email');
    expect(since).toBeGreaterThanOrEqual(0);
    expect(since).toBeLessThan(30);
  });
});
