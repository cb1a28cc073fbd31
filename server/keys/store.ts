import { generateKeyPairSync, randomBytes, type JsonWebKey } from 'node:crypto';
import type { Db } from '../db.ts';
import { seal, unseal } from '../security/seal.ts';

const privateField = (kid: string) =>
  ({ table: 'signing_keys', column: 'private_sealed', row: kid }) as const;

/** Every rotation makes one key per algorithm, so a client may ask for any of them. */
export const SIGNING_ALGS = ['ES256', 'EdDSA', 'RS256'] as const;
export type SigningAlg = (typeof SIGNING_ALGS)[number];

type Row = {
  kid: string;
  alg: SigningAlg;
  public_jwk: JsonWebKey;
  private_sealed: string;
  activate_at: Date;
};
export type PrivateJwk = JsonWebKey & { kid: string; alg: string; use: 'sig' };
export type KeyState = 'announced' | 'active' | 'retiring';
export type KeyInfo = {
  kid: string;
  alg: SigningAlg;
  state: KeyState;
  activateAt: Date;
  unpublishAt?: Date;
};

function generate(alg: SigningAlg): { publicJwk: JsonWebKey; privateJwk: JsonWebKey } {
  const pair =
    alg === 'ES256'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : alg === 'EdDSA'
        ? generateKeyPairSync('ed25519')
        : generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    publicJwk: pair.publicKey.export({ format: 'jwk' }),
    privateJwk: pair.privateKey.export({ format: 'jwk' }),
  };
}

/** Adds a new key per algorithm that starts signing at `activateAt` (announce stage until then). */
export async function addKeySet(db: Db, sealingKey: Buffer, activateAt: Date): Promise<string[]> {
  const rows = SIGNING_ALGS.map((alg) => {
    const { publicJwk, privateJwk } = generate(alg);
    const kid = randomBytes(9).toString('base64url');
    return {
      kid,
      alg,
      public_jwk: JSON.stringify({ ...publicJwk, kid, alg, use: 'sig' }),
      private_sealed: seal(sealingKey, JSON.stringify(privateJwk), privateField(kid)),
      activate_at: activateAt,
    };
  });
  await db('signing_keys').insert(rows);
  return rows.map((r) => r.kid);
}

export type KeyView = {
  /** Private JWKs in the order oidc-provider must see them: per algorithm the active key first. */
  jwks: PrivateJwk[];
  keys: KeyInfo[];
  /** Next moment the view changes by itself (a key activates or leaves the JWKS). */
  nextChange: Date | undefined;
  fingerprint: string;
};

/**
 * Works out each key's stage from the table alone, so every process reading it agrees without
 * coordination: per algorithm the newest key whose activate_at has passed signs; newer ones are
 * announced; older ones stay published `retainSeconds` after being superseded (the longest
 * lifetime of anything they signed), then drop out.
 */
export async function loadKeyView(
  db: Db,
  sealingKey: Buffer,
  retainSeconds: number,
  now = new Date(),
): Promise<KeyView> {
  const rows: Row[] = await db('signing_keys').orderBy('activate_at', 'asc').orderBy('kid', 'asc');
  const keys: KeyInfo[] = [];
  const changes: number[] = [];
  const published: Row[] = [];
  for (const alg of SIGNING_ALGS) {
    const ofAlg = rows.filter((r) => r.alg === alg);
    const activeIndex = Math.max(
      0,
      ofAlg.findLastIndex((r) => new Date(r.activate_at) <= now),
    );
    const ordered: Row[] = [];
    ofAlg.forEach((row, i) => {
      const activateAt = new Date(row.activate_at);
      if (i === activeIndex) {
        ordered.unshift(row);
        keys.push({ kid: row.kid, alg, state: 'active', activateAt });
      } else if (i > activeIndex) {
        ordered.push(row);
        keys.push({ kid: row.kid, alg, state: 'announced', activateAt });
        changes.push(activateAt.getTime());
      } else {
        const unpublishAt = new Date(
          new Date(ofAlg[i + 1]!.activate_at).getTime() + retainSeconds * 1000,
        );
        if (unpublishAt <= now) return;
        ordered.push(row);
        keys.push({ kid: row.kid, alg, state: 'retiring', activateAt, unpublishAt });
        changes.push(unpublishAt.getTime());
      }
    });
    published.push(...ordered);
  }
  const jwks = published.map((row) => {
    const pub = typeof row.public_jwk === 'string' ? JSON.parse(row.public_jwk) : row.public_jwk;
    return {
      ...JSON.parse(unseal(sealingKey, row.private_sealed, privateField(row.kid))),
      ...pub,
    } as PrivateJwk;
  });
  const future = changes.filter((t) => t > now.getTime());
  return {
    jwks,
    keys,
    nextChange: future.length ? new Date(Math.min(...future)) : undefined,
    fingerprint: keys.map((k) => `${k.kid}:${k.state}`).join(','),
  };
}

/** Newest activation time of any key, or undefined when the table is empty. */
export async function latestActivation(db: Db): Promise<Date | undefined> {
  const row = await db('signing_keys').max({ at: 'activate_at' }).first();
  return row?.at ? new Date(row.at) : undefined;
}
