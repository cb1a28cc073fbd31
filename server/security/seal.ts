import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

// AES-256-GCM with a random 96-bit IV (NIST SP 800-38D §8.2.2) and the full 128-bit tag, set on
// both sides: left open, decipher accepts a tag cut to 4 bytes, and a cut GCM tag still verifies.
// Format: v2.<iv>.<tag>.<ciphertext>, base64url parts. v2 binds the value to its column and row
// (additional authenticated data): copied elsewhere it does not open. v1 values, sealed before
// that without AAD, still open and are re-sealed at start-up (server/security/reseal.ts).
const ALGORITHM = 'aes-256-gcm';
const TAG_BYTES = 16;
const IV_BYTES = 12;
const CURRENT = 'v2';
const LEGACY = 'v1';

/** Where a sealed value lives; it opens only there. */
export type SealedField = { table: string; column: string; row: string };

const aad = ({ table, column, row }: SealedField) =>
  Buffer.from(`latchkey:${table}.${column}:${row}`, 'utf8');

export function seal(key: Buffer, plaintext: string, field: SealedField): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv(ALGORITHM, key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad(field));
  const data = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return [CURRENT, ...[iv, cipher.getAuthTag(), data].map((p) => p.toString('base64url'))].join(
    '.',
  );
}

/** How a value sealed in the old format (no AAD) begins: re-seal it. */
export const LEGACY_PREFIX = `${LEGACY}.`;

export function unseal(key: Buffer, sealed: string, field: SealedField): string {
  const [version, iv, tag, data] = sealed.split('.');
  if ((version !== CURRENT && version !== LEGACY) || !iv || !tag || data === undefined)
    throw new Error('not a sealed value');
  const tagBytes = Buffer.from(tag, 'base64url');
  if (tagBytes.length !== TAG_BYTES) throw new Error('sealed value has a truncated tag');
  const decipher = createDecipheriv(ALGORITHM, key, Buffer.from(iv, 'base64url'), {
    authTagLength: TAG_BYTES,
  });
  if (version === CURRENT) decipher.setAAD(aad(field));
  decipher.setAuthTag(tagBytes);
  return Buffer.concat([
    decipher.update(Buffer.from(data, 'base64url')),
    decipher.final(),
  ]).toString('utf8');
}
