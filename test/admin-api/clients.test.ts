import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser } from '../support/browser.ts';
import { apiCall, apiClient, documentChecker, type Json } from '../support/admin-api.ts';
import { REDIRECT_URI, relyingParty, signIn, tokenRequest } from '../support/relying-party.ts';
import { startTestServer, storageEnv, STORAGES, type TestServer } from '../support/server.ts';

const OVERLAP_SECONDS = 2;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each(STORAGES)('admin API clients (%s)', (storage) => {
  let server: TestServer;
  let check: ReturnType<typeof documentChecker>;
  let token: string;
  let reader: string;
  let actor: string;
  const person = { email: `carol-${storage}@example.test`, password: 'a long test passphrase' };

  /** A call whose answer is checked against the published document. */
  async function call(method: string, template: string, path = template, init = {}) {
    const res = await apiCall(server, token, method, path, init);
    check(method, template, res);
    return res;
  }

  const create = (body: Json) => call('POST', '/clients', '/clients', { body });

  beforeAll(async () => {
    server = await startTestServer({
      ...(await storageEnv(storage)),
      CLIENT_SECRET_OVERLAP: `${OVERLAP_SECONDS}s`,
      RATE_LIMIT_ADMIN_API: 'off',
    });
    check = documentChecker((await apiCall(server, undefined, 'GET', '/openapi.json')).body);
    const admin = await apiClient(server, ['clients:read', 'clients:write']);
    actor = admin.clientId;
    token = await admin.token();
    reader = await (await apiClient(server, ['clients:read'])).token();
    await server.users.create({ ...person, emailVerified: true });
  });
  afterAll(async () => {
    await server?.cleanup();
  });

  it('creates a client that completes a code flow, and shows its secret only then', async () => {
    const res = await create({ name: 'Web app', redirectUris: [REDIRECT_URI] });
    expect(res.status).toBe(201);
    const { clientId, clientSecret } = res.body;
    expect(clientSecret).toMatch(/^[\w-]{40,}$/);
    expect(res.headers.get('location')).toBe(`/api/v1/clients/${clientId}`);
    expect(res.headers.get('etag')).toMatch(/^"\d+"$/);

    const read = await call('GET', '/clients/{id}', `/clients/${clientId}`);
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({ clientId, name: 'Web app', redirectUris: [REDIRECT_URI] });
    expect(JSON.stringify(read.body)).not.toContain(clientSecret);
    expect(read.headers.get('etag')).toBe(res.headers.get('etag'));

    const rp = await relyingParty(server.url, clientId, clientSecret);
    const tokens = await signIn(rp, new Browser(), server.url, { ...person, scope: 'openid' });
    expect(tokens.claims()?.aud).toBe(clientId);

    const [row] = await server
      .db('audit_events')
      .where({ type: 'client_created', subject: clientId });
    expect(row).toMatchObject({ actor_type: 'client', actor_id: actor, outcome: 'success' });
    expect(JSON.stringify(row)).not.toContain(clientSecret);
  });

  it('refuses what the CLI refuses, and unknown fields, with 400 naming the field', async () => {
    const cases = [
      { name: 'No way back' },
      { name: 'SPA', public: true, pkceRequired: false, redirectUris: [REDIRECT_URI] },
      { name: 'Odd', redirectUris: ['not a url'] },
      { name: 'Extra', redirectUris: [REDIRECT_URI], client_secret: 'mine' },
      { name: 'Scopes', redirectUris: [REDIRECT_URI], apiScopes: ['everything'] },
    ];
    for (const body of cases) {
      const res = await create(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.errors.length).toBeGreaterThan(0);
    }
    expect((await create({ name: 'Job', grantTypes: ['client_credentials'] })).status).toBe(201);
  });

  it('lists clients page by page, without secrets', async () => {
    const secrets: string[] = [];
    for (const name of ['Page one', 'Page two', 'Page three']) {
      const res = await create({ name, redirectUris: [REDIRECT_URI] });
      secrets.push(res.body.clientSecret);
    }
    const seen: string[] = [];
    const ids: string[] = [];
    let cursor: string | null = '';
    while (cursor !== null) {
      const query: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
      const res = await apiCall(server, reader, 'GET', `/clients?limit=2${query}`);
      check('GET', '/clients', res);
      expect(res.status).toBe(200);
      expect(res.body.items.length).toBeLessThanOrEqual(2);
      for (const secret of secrets) expect(JSON.stringify(res.body)).not.toContain(secret);
      seen.push(...res.body.items.map((c: Json) => c.name));
      ids.push(...res.body.items.map((c: Json) => c.clientId));
      cursor = res.body.next;
    }
    expect(seen).toEqual(expect.arrayContaining(['Page one', 'Page two', 'Page three']));
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toEqual([...ids].sort());
    expect(ids.length).toBe(await server.clients.count());
    const bad = await apiCall(server, reader, 'GET', '/clients?cursor=bm90LWEtY3Vyc29y');
    expect(bad.status).toBe(400);
  });

  it('changes a client only with the ETag it read: of two changes from one read, one gets 412', async () => {
    const { body, headers } = await create({ name: 'Shared', redirectUris: [REDIRECT_URI] });
    const path = `/clients/${body.clientId}`;
    const etag = headers.get('etag')!;
    const without = await call('PATCH', '/clients/{id}', path, { body: { name: 'No tag' } });
    expect(without.status).toBe(428);

    const [one, two] = await Promise.all(
      ['Alice was here', 'Bob was here'].map((name) =>
        call('PATCH', '/clients/{id}', path, {
          body: { name, corsOrigins: ['https://spa.example.test'] },
          headers: { 'if-match': etag },
        }),
      ),
    );
    expect([one!.status, two!.status].sort()).toEqual([200, 412]);
    const winner = one!.status === 200 ? one! : two!;
    expect(winner.headers.get('etag')).not.toBe(etag);
    const now = await call('GET', '/clients/{id}', path);
    expect(now.body.name).toBe(winner.body.name);
    expect(now.body.corsOrigins).toEqual(['https://spa.example.test']);

    const next = await call('PATCH', '/clients/{id}', path, {
      body: { redirectUris: ['http://rp.example.test/other'], idTokenAlg: 'RS256' },
      headers: { 'if-match': now.headers.get('etag')! },
    });
    expect(next.status).toBe(200);
    expect(next.body).toMatchObject({
      redirectUris: ['http://rp.example.test/other'],
      idTokenAlg: 'RS256',
    });
    const rows = await server
      .db('audit_events')
      .where({ type: 'client_updated', subject: body.clientId });
    expect(rows).toHaveLength(2);
    expect(rows[0].actor_id).toBe(actor);
  });

  it('rotates a secret: old and new work at /token during the overlap, only the new after it', async () => {
    const created = await create({
      name: 'Rotating job',
      grantTypes: ['client_credentials'],
      apiScopes: ['clients:read'],
    });
    const clientId = created.body.clientId;
    const old = { clientId, clientSecret: created.body.clientSecret };
    const rotated = await call(
      'POST',
      '/clients/{id}/rotate-secret',
      `/clients/${clientId}/rotate-secret`,
      {
        body: {},
      },
    );
    expect(rotated.status).toBe(200);
    const fresh = { clientId, clientSecret: rotated.body.clientSecret };
    expect(fresh.clientSecret).not.toBe(old.clientSecret);
    expect(Date.parse(rotated.body.previousSecretExpiresAt)).toBeGreaterThan(Date.now());

    const row = await server.db('clients').where({ client_id: clientId }).first();
    expect(JSON.stringify(row)).not.toContain(old.clientSecret);
    expect(JSON.stringify(row)).not.toContain(fresh.clientSecret);

    const grant = { grant_type: 'client_credentials', resource: `${server.url}/api/v1` };
    expect((await tokenRequest(server.url, old, grant)).status).toBe(200);
    expect((await tokenRequest(server.url, fresh, grant)).status).toBe(200);
    await sleep(OVERLAP_SECONDS * 1000 + 200);
    const late = await tokenRequest(server.url, old, grant);
    expect(late.status).toBe(401);
    expect(late.body.error).toBe('invalid_client');
    expect((await tokenRequest(server.url, fresh, grant)).status).toBe(200);

    // Rotating at once, for a leaked secret: the one before stops working now.
    const now = await call(
      'POST',
      '/clients/{id}/rotate-secret',
      `/clients/${clientId}/rotate-secret`,
      {
        body: { overlapSeconds: 0 },
      },
    );
    expect(now.status).toBe(200);
    expect((await tokenRequest(server.url, fresh, grant)).status).toBe(401);
    const newest = { clientId, clientSecret: now.body.clientSecret };
    expect((await tokenRequest(server.url, newest, grant)).status).toBe(200);

    const rows = await server
      .db('audit_events')
      .where({ type: 'client_secret_rotated', subject: clientId });
    expect(rows).toHaveLength(2);
    expect(JSON.stringify(rows)).not.toContain(now.body.clientSecret);
  });

  it('deletes a client: 204, and its grants, refresh and access tokens stop working', async () => {
    const { body } = await create({ name: 'Leaving', redirectUris: [REDIRECT_URI] });
    const rp = await relyingParty(server.url, body.clientId, body.clientSecret);
    const tokens = await signIn(rp, new Browser(), server.url, {
      ...person,
      scope: 'openid offline_access',
    });
    const grants = () =>
      server
        .db('oidc_payloads')
        .where({ model: 'Grant' })
        .whereRaw(`payload->>'clientId' = ?`, [body.clientId]);
    expect(await grants()).toHaveLength(1);

    const res = await call('DELETE', '/clients/{id}', `/clients/${body.clientId}`);
    expect(res.status).toBe(204);
    expect(await grants()).toHaveLength(0);
    const refresh = await tokenRequest(server.url, body, {
      grant_type: 'refresh_token',
      refresh_token: tokens.refresh_token!,
    });
    expect(refresh.status).toBe(401);
    const userinfo = await fetch(rp.serverMetadata().userinfo_endpoint!, {
      headers: { authorization: `Bearer ${tokens.access_token}` },
    });
    expect(userinfo.status).toBe(401);
    expect((await call('GET', '/clients/{id}', `/clients/${body.clientId}`)).status).toBe(404);
    expect((await call('DELETE', '/clients/{id}', `/clients/${body.clientId}`)).status).toBe(404);
    const [row] = await server
      .db('audit_events')
      .where({ type: 'client_deleted', subject: body.clientId });
    expect(row).toMatchObject({ actor_id: actor });
  });

  it('keeps the built-in account client out of reach: 403 on change, rotate and delete', async () => {
    const path = '/clients/latchkey-account';
    const tag = { 'if-match': '"1"' };
    const answers = [
      await call('PATCH', '/clients/{id}', path, { body: { name: 'Mine' }, headers: tag }),
      await call('POST', '/clients/{id}/rotate-secret', `${path}/rotate-secret`, { body: {} }),
      await call('DELETE', '/clients/{id}', path),
    ];
    for (const answer of answers) {
      expect(answer.status).toBe(403);
      expect(answer.body.type).toBe('urn:latchkey:problem:forbidden');
    }
  });
});
