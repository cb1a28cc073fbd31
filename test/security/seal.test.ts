import { generate, generateSecret } from 'otplib';
import { createCipheriv, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClientStore } from '../../server/clients/store.ts';
import type { Db } from '../../server/db.ts';
import { loadKeyView } from '../../server/keys/store.ts';
import { createTotpFactors } from '../../server/mfa/totp.ts';
import { resealLegacy } from '../../server/security/reseal.ts';
import { seal, unseal, type SealedField } from '../../server/security/seal.ts';
import { constantTimeEqual } from '../../server/security/constant-time.ts';
import { tempEmbeddedDb } from '../support/embedded-db.ts';

const key = randomBytes(32);
const SECRET: SealedField = { table: 'clients', column: 'secret_sealed', row: 'client-a' };

/** A value as the first format (v1) sealed it: AES-256-GCM without additional data. */
function legacySeal(sealingKey: Buffer, plaintext: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', sealingKey, iv);
  const data = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return ['v1', ...[iv, cipher.getAuthTag(), data].map((p) => p.toString('base64url'))].join('.');
}

/** The sealed value with its tag cut to the first `bytes` bytes. */
function withTagCut(sealed: string, bytes: number): string {
  const parts = sealed.split('.');
  parts[2] = Buffer.from(parts[2]!, 'base64url').subarray(0, bytes).toString('base64url');
  return parts.join('.');
}

describe('sealing secrets at rest (AES-256-GCM)', () => {
  it('round-trips and never repeats a ciphertext', () => {
    const a = seal(key, 'client secret', SECRET);
    expect(unseal(key, a, SECRET)).toBe('client secret');
    expect(seal(key, 'client secret', SECRET)).not.toBe(a);
    expect(a).not.toContain('client secret');
  });

  it('refuses a tampered value, a wrong key and garbage', () => {
    const sealed = seal(key, 'client secret', SECRET);
    const parts = sealed.split('.');
    const data = Buffer.from(parts[3]!, 'base64url');
    data[0]! ^= 1;
    expect(() =>
      unseal(key, [...parts.slice(0, 3), data.toString('base64url')].join('.'), SECRET),
    ).toThrow();
    expect(() => unseal(randomBytes(32), sealed, SECRET)).toThrow();
    expect(() => unseal(key, 'not sealed', SECRET)).toThrow('not a sealed value');
  });

  it('binds a value to its column and row: copied to another row or column it does not open', () => {
    const sealed = seal(key, 'client secret', SECRET);
    expect(() => unseal(key, sealed, { ...SECRET, row: 'client-b' })).toThrow();
    expect(() => unseal(key, sealed, { ...SECRET, table: 'totp_factors' })).toThrow();
    expect(() => unseal(key, sealed, { ...SECRET, column: 'private_sealed' })).toThrow();
  });

  it('refuses a truncated tag, though a GCM tag prefix would verify', () => {
    for (const sealed of [seal(key, 'client secret', SECRET), legacySeal(key, 'client secret')])
      for (const bytes of [12, 8, 4])
        expect(() => unseal(key, withTagCut(sealed, bytes), SECRET)).toThrow();
  });

  it('still opens a legacy value sealed without additional data', () => {
    expect(unseal(key, legacySeal(key, 'old secret'), SECRET)).toBe('old secret');
  });
});

describe('legacy sealed values are re-sealed, bound to their row, at start-up', () => {
  let db: Db;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    ({ db, cleanup } = await tempEmbeddedDb());
  });
  afterAll(() => cleanup());

  it('re-seals client secrets, signing keys and TOTP seeds; each still opens where it belongs', async () => {
    const clients = createClientStore(db, key, 0);
    const { clientId, clientSecret } = await clients.create({
      name: 'Old app',
      redirectUris: ['https://old.example.test/cb'],
    });
    await db('clients')
      .where({ client_id: clientId })
      .update({ secret_sealed: legacySeal(key, clientSecret!) });
    const jwk = JSON.stringify({ kty: 'oct', k: 'not-a-real-key' });
    await db('signing_keys').insert({
      kid: 'old-kid',
      alg: 'ES256',
      public_jwk: JSON.stringify({ kty: 'oct', kid: 'old-kid', alg: 'ES256', use: 'sig' }),
      private_sealed: legacySeal(key, jwk),
      activate_at: new Date(),
    });
    const userId = 'old-user';
    await db('users').insert({ id: userId, email: 'old@example.test', email_verified: true });
    const seed = generateSecret();
    await db('totp_factors').insert({
      user_id: userId,
      secret_sealed: legacySeal(key, seed),
      confirmed_at: new Date(),
    });

    expect(await resealLegacy(db, key)).toBe(3);
    expect(await resealLegacy(db, key)).toBe(0);
    const rows = [
      (await db('clients').where({ client_id: clientId }).first()).secret_sealed,
      (await db('signing_keys').where({ kid: 'old-kid' }).first()).private_sealed,
      (await db('totp_factors').where({ user_id: userId }).first()).secret_sealed,
    ];
    for (const value of rows) expect(value).toMatch(/^v2\./);
    expect((await clients.findForProvider(clientId))?.client_secret).toBe(clientSecret);
    expect((await loadKeyView(db, key, 0)).jwks.find((k) => k.kid === 'old-kid')).toMatchObject({
      k: 'not-a-real-key',
    });
    const totp = createTotpFactors(db, key, 'Test');
    expect(await totp.verify(userId, await generate({ secret: seed }))).toBe(true);
    // A re-sealed value moved to another row no longer opens there.
    await db('totp_factors').where({ user_id: userId }).update({ secret_sealed: rows[0] });
    await expect(totp.verify(userId, '000000')).rejects.toThrow();
  });
});

describe('constant-time comparison', () => {
  it('tells equal from different secrets of any length', () => {
    expect(constantTimeEqual('s3cret', 's3cret')).toBe(true);
    expect(constantTimeEqual('s3cret', 's3cres')).toBe(false);
    expect(constantTimeEqual('s3cret', 's3cret-longer')).toBe(false);
  });
});
