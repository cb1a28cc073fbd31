import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUserStore, UserExistsError } from '../../server/users/store.ts';
import type { Db } from '../../server/db.ts';
import { tempEmbeddedDb } from '../support/embedded-db.ts';
import { createPasswordHasher } from '../../server/security/passwords.ts';

const OWASP = { memoryCost: 19456, timeCost: 2, parallelism: 1 };

describe('user store', () => {
  let db: Db;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    ({ db, cleanup } = await tempEmbeddedDb());
  });
  afterAll(() => cleanup());

  it('stores argon2id hashes with the configured parameters, never the password', async () => {
    const users = createUserStore(db, createPasswordHasher(OWASP));
    const user = await users.create({ email: 'hash@example.test', password: 'a fine passphrase' });
    expect(user.password_hash).toMatch(/^\$argon2id\$v=19\$m=19456,p=1,t=2\$/);
    expect(JSON.stringify(user)).not.toContain('a fine passphrase');
  });

  it('treats email as unique without regard to case, and finds it either way', async () => {
    const users = createUserStore(db, createPasswordHasher(OWASP));
    await users.create({ email: 'Case@Example.test', password: 'x'.repeat(12) });
    await expect(
      users.create({ email: 'case@example.TEST', password: 'y'.repeat(12) }),
    ).rejects.toBeInstanceOf(UserExistsError);
    expect((await users.findByEmail('CASE@example.test'))?.email).toBe('Case@Example.test');
  });

  it('authenticates the right password only, and never a disabled account', async () => {
    const users = createUserStore(db, createPasswordHasher(OWASP));
    const user = await users.create({
      email: 'auth@example.test',
      password: 'right password here',
    });
    expect((await users.authenticate('AUTH@example.test', 'right password here'))?.id).toBe(
      user.id,
    );
    expect(await users.authenticate('auth@example.test', 'wrong password here')).toBeUndefined();
    expect(await users.authenticate('nobody@example.test', 'right password here')).toBeUndefined();
    expect(await users.setDisabled(user.id, true)).toBe(true);
    expect(await users.authenticate('auth@example.test', 'right password here')).toBeUndefined();
  });

  it('rehashes at sign-in when the configured parameters changed', async () => {
    const weak = createUserStore(
      db,
      createPasswordHasher({ memoryCost: 8192, timeCost: 1, parallelism: 1 }),
    );
    const user = await weak.create({ email: 'rehash@example.test', password: 'upgrade me please' });
    expect(user.password_hash).toContain('m=8192,p=1,t=1');
    const strong = createUserStore(db, createPasswordHasher(OWASP));
    expect(await strong.authenticate('rehash@example.test', 'upgrade me please')).toBeDefined();
    expect((await strong.findById(user.id))?.password_hash).toContain('m=19456,p=1,t=2');
    expect(await strong.authenticate('rehash@example.test', 'upgrade me please')).toBeDefined();
  });
});
