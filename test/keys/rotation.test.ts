import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import knexFactory, { type Knex } from 'knex';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../server/db.ts';
import { tempEmbeddedDb } from '../support/embedded-db.ts';
import { addKeySet, loadKeyView } from '../../server/keys/store.ts';
import { startChildServer, type ChildServer } from '../support/child-server.ts';
import { relyingParty } from '../support/relying-party.ts';
import { startTestServer, storageEnv, TEST_SECRETS, type TestServer } from '../support/server.ts';

const API = 'https://api.example.test';
const sealingKey = Buffer.from(TEST_SECRETS.SEALING_KEY, 'base64');

async function jwks(server: { url: string }): Promise<JSONWebKeySet> {
  return (await fetch(`${server.url}/jwks`)).json() as Promise<JSONWebKeySet>;
}

async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 8000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('signing key rotation across two server processes on one PostgreSQL + Redis', () => {
  let a: TestServer;
  let b: ChildServer;
  let rpA: oidc.Configuration;
  let rpB: oidc.Configuration;

  beforeAll(async () => {
    const env = {
      ...(await storageEnv('postgres+redis')),
      KEY_ANNOUNCE_SECONDS: '2',
      KEY_REFRESH_SECONDS: '1',
      RESOURCE_SERVERS: JSON.stringify([{ audience: API, scopes: 'read', format: 'jwt' }]),
    };
    a = await startTestServer(env);
    b = await startChildServer({ ...env, DATA_DIR: mkdtempSync(join(tmpdir(), 'latchkey-b-')) });
    const m2m = await a.clients.create({
      name: 'Job',
      redirectUris: [],
      grantTypes: ['client_credentials'],
    });
    rpA = await relyingParty(a.url, m2m.clientId, m2m.clientSecret);
    rpB = await relyingParty(b.url, m2m.clientId, m2m.clientSecret);
  });
  afterAll(async () => {
    await a?.cleanup();
    expect(await b?.stop()).toBe(0);
  });

  const jwtKid = async (rp: oidc.Configuration) => {
    const { access_token } = await oidc.clientCredentialsGrant(rp, {
      resource: API,
      scope: 'read',
    });
    return { token: access_token, kid: decodeProtectedHeader(access_token).kid! };
  };

  it('announces, then activates; old tokens keep verifying and the second process follows', async () => {
    const before = await jwtKid(rpA);
    expect((await jwtKid(rpB)).kid).toBe(before.kid);

    const kids = await a.keys.rotate();
    expect(kids).toHaveLength(3);
    const newEs256 = a.keys.current().keys.find((k) => kids.includes(k.kid) && k.alg === 'ES256')!;
    expect(newEs256.state).toBe('announced');

    // Announce stage: published by both processes, not yet signing.
    const published = (await jwks(a)).keys;
    expect(published.map((k) => k.kid)).toContain(newEs256.kid);
    expect(published.some((k) => 'd' in k || 'p' in k)).toBe(false);
    await eventually(async () =>
      (await jwks(b)).keys.some((k) => k.kid === newEs256.kid) ? true : undefined,
    );
    expect((await jwtKid(rpA)).kid).toBe(before.kid);

    // Active stage: both processes sign with the new key once its time comes.
    await eventually(async () => ((await jwtKid(rpA)).kid === newEs256.kid ? true : undefined));
    await eventually(async () => ((await jwtKid(rpB)).kid === newEs256.kid ? true : undefined));

    // A token signed before the rotation still verifies against either process's JWKS.
    for (const server of [a, b]) {
      const { payload } = await jwtVerify(before.token, createLocalJWKSet(await jwks(server)), {
        issuer: a.url,
        audience: API,
      });
      expect(payload.aud).toBe(API);
    }
  });
});

describe('key stages derived from the key table', () => {
  let db: Db;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    ({ db, cleanup } = await tempEmbeddedDb());
  });
  afterAll(() => cleanup());

  it('keeps a superseded key published for the retain period, then drops it', async () => {
    const t0 = new Date('2026-01-01T00:00:00Z');
    const t1 = new Date('2026-04-01T00:00:00Z');
    const oldKids = await addKeySet(db, sealingKey, t0);
    const newKids = await addKeySet(db, sealingKey, t1);
    const retain = 3600;

    const announced = await loadKeyView(db, sealingKey, retain, new Date(t1.getTime() - 1000));
    expect(announced.keys.filter((k) => newKids.includes(k.kid)).map((k) => k.state)).toEqual([
      'announced',
      'announced',
      'announced',
    ]);
    expect(announced.jwks[0]!.kid).toBe(oldKids[0]); // ES256: the old key still signs
    expect(announced.nextChange).toEqual(t1);

    const retiring = await loadKeyView(db, sealingKey, retain, new Date(t1.getTime() + 1000));
    expect(retiring.jwks[0]!.kid).toBe(newKids[0]);
    expect(
      retiring.keys.filter((k) => oldKids.includes(k.kid)).every((k) => k.state === 'retiring'),
    ).toBe(true);
    expect(retiring.jwks.map((k) => k.kid)).toEqual(expect.arrayContaining(oldKids));

    const retired = await loadKeyView(
      db,
      sealingKey,
      retain,
      new Date(t1.getTime() + retain * 1000 + 1000),
    );
    expect(retired.jwks.map((k) => k.kid).sort()).toEqual([...newKids].sort());
    expect(retired.nextChange).toBeUndefined();
  });

  it('never publishes private key material in the public JWKS', async () => {
    const view = await loadKeyView(db, sealingKey, 60);
    expect(view.jwks.every((k) => 'd' in k)).toBe(true); // the provider needs the private part…
    const { rows } = await db.raw('SELECT public_jwk, private_sealed FROM signing_keys');
    for (const row of rows) {
      expect(JSON.stringify(row.public_jwk)).not.toMatch(/"d"/); // …the table keeps it only sealed
      expect(row.private_sealed).toMatch(/^v2\./);
    }
  });
});

describe('rotation by schedule', () => {
  let server: TestServer;
  let db: Knex;

  beforeAll(async () => {
    server = await startTestServer({
      ...(await storageEnv('postgres+redis')),
      KEY_ROTATION_DAYS: '1',
      KEY_ANNOUNCE_SECONDS: '3600',
      KEY_REFRESH_SECONDS: '1',
    });
    db = knexFactory({ client: 'pg', connection: server.env.DATABASE_URL });
  });
  afterAll(async () => {
    await db?.destroy();
    await server?.cleanup();
  });

  it('announces new keys when the active ones reach KEY_ROTATION_DAYS, once, with an audit row', async () => {
    const before = await db('signing_keys').count({ n: '*' }).first();
    await db('signing_keys').update({ activate_at: db.raw(`now() - interval '2 days'`) });
    const rows = await eventually(async () => {
      const found = await db('audit_events').where({ type: 'keys_rotated' });
      return found.length ? found : undefined;
    });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ actor_type: 'system', outcome: 'success' });
    expect(rows[0].detail.by).toBe('schedule');
    const after = await db('signing_keys').count({ n: '*' }).first();
    expect(Number(after?.n)).toBe(Number(before?.n) * 2);
    expect(rows[0].detail.kids).toHaveLength(Number(before?.n));
    // The new keys activate a day later: the schedule does not fire again meanwhile.
    await new Promise((r) => setTimeout(r, 2500));
    expect(await db('audit_events').where({ type: 'keys_rotated' })).toHaveLength(1);
  });
});
