import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClientStore } from '../../server/clients/store.ts';
import type { Db } from '../../server/db.ts';
import { tempEmbeddedDb } from '../support/embedded-db.ts';

const key = Buffer.alloc(32, 3);

describe('client store on the embedded database', () => {
  let db: Db;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    ({ db, cleanup } = await tempEmbeddedDb());
  });
  afterAll(() => cleanup());

  it('keeps the secret sealed and gives it back unsealed to the provider only', async () => {
    const store = createClientStore(db, key, 0);
    const { clientId, clientSecret } = await store.create({
      name: 'App',
      redirectUris: ['https://app.example.test/cb'],
    });
    const row = await db('clients').where({ client_id: clientId }).first();
    expect(row.secret_sealed).toMatch(/^v2\./);
    expect(JSON.stringify(row)).not.toContain(clientSecret);
    expect((await store.findForProvider(clientId))?.client_secret).toBe(clientSecret);
  });

  it('says whether a delete found the client', async () => {
    const store = createClientStore(db, key, 0);
    const { clientId } = await store.create({
      name: 'Gone',
      redirectUris: ['https://gone.example.test/cb'],
    });
    expect(await store.delete(clientId)).toBe(true);
    expect(await store.delete(clientId)).toBe(false);
    expect(await store.findForProvider(clientId)).toBeUndefined();
  });

  it('gives a public client no secret and its redirect origins no implicit CORS', async () => {
    const store = createClientStore(db, key, 0);
    const { clientId, clientSecret } = await store.create({
      name: 'SPA',
      public: true,
      redirectUris: ['https://spa.example.test/cb'],
    });
    expect(clientSecret).toBeUndefined();
    expect(await store.findForProvider(clientId)).toMatchObject({
      token_endpoint_auth_method: 'none',
      allowed_cors_origins: [],
    });
  });
});
