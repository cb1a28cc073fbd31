import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { seal, unseal } from '../../server/security/seal.ts';
import { constantTimeEqual } from '../../server/security/constant-time.ts';

const key = randomBytes(32);

describe('sealing secrets at rest (AES-256-GCM)', () => {
  it('round-trips and never repeats a ciphertext', () => {
    const a = seal(key, 'client secret');
    expect(unseal(key, a)).toBe('client secret');
    expect(seal(key, 'client secret')).not.toBe(a);
    expect(a).not.toContain('client secret');
  });

  it('refuses a tampered value, a wrong key and garbage', () => {
    const sealed = seal(key, 'client secret');
    const parts = sealed.split('.');
    const data = Buffer.from(parts[3]!, 'base64url');
    data[0]! ^= 1;
    expect(() =>
      unseal(key, [...parts.slice(0, 3), data.toString('base64url')].join('.')),
    ).toThrow();
    expect(() => unseal(randomBytes(32), sealed)).toThrow();
    expect(() => unseal(key, 'not sealed')).toThrow('not a sealed value');
  });
});

describe('constant-time comparison', () => {
  it('tells equal from different secrets of any length', () => {
    expect(constantTimeEqual('s3cret', 's3cret')).toBe(true);
    expect(constantTimeEqual('s3cret', 's3cres')).toBe(false);
    expect(constantTimeEqual('s3cret', 's3cret-longer')).toBe(false);
  });
});
