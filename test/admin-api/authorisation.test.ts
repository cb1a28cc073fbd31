import { validate } from '@scalar/openapi-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codeAt, Flow } from '../support/flow.ts';
import { apiAudience, apiCall, apiClient, documentChecker } from '../support/admin-api.ts';
import { relyingParty, REDIRECT_URI, tokenRequest } from '../support/relying-party.ts';
import { startTestServer, storageEnv, STORAGES, type TestServer } from '../support/server.ts';

const PROBLEM = 'application/problem+json';

describe.each(STORAGES)('admin API authorisation (%s)', (storage) => {
  let server: TestServer;
  let check: ReturnType<typeof documentChecker>;

  beforeAll(async () => {
    server = await startTestServer({
      ...(await storageEnv(storage)),
      RESOURCE_SERVERS: JSON.stringify([
        { audience: 'https://other-api.example.test', scopes: 'read', format: 'opaque' },
      ]),
    });
    const document = await apiCall(server, undefined, 'GET', '/openapi.json');
    check = documentChecker(document.body);
  });
  afterAll(async () => {
    await server?.cleanup();
  });

  it('publishes an OpenAPI 3.1 document that validates', async () => {
    const { body } = await apiCall(server, undefined, 'GET', '/openapi.json');
    expect(body.openapi).toBe('3.1.0');
    const result = await validate(body);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(body.components.securitySchemes.oauth2.flows.clientCredentials.tokenUrl).toBe(
      `${server.url}/token`,
    );
  });

  it('lets a machine client call the routes of the scopes an admin allowed it, and no others', async () => {
    const job = await apiClient(server, ['keys:write']);
    const token = await job.token();
    const keys = await apiCall(server, token, 'GET', '/keys');
    expect(keys.status).toBe(200);
    check('GET', '/keys', keys);
    expect(keys.body.keys.length).toBeGreaterThan(0);
    expect(keys.headers.get('cache-control')).toBe('no-store');

    const reader = await apiClient(server, ['users:read']);
    const refused = await apiCall(server, await reader.token(), 'GET', '/keys');
    expect(refused.status).toBe(403);
    expect(refused.headers.get('content-type')).toContain(PROBLEM);
    expect(refused.body.type).toBe('urn:latchkey:problem:insufficient-scope');
    expect(refused.headers.get('www-authenticate')).toContain('error="insufficient_scope"');
    check('GET', '/keys', refused);

    // A scope the client was not allowed is not issued.
    const more = await tokenRequest(server.url, reader, {
      grant_type: 'client_credentials',
      resource: apiAudience(server),
      scope: 'users:read keys:write',
    });
    expect(more.status).toBe(200);
    expect(String(more.body.scope).split(' ')).not.toContain('keys:write');

    // Every call is audited with the client as its actor.
    const rows = await server
      .db('audit_events')
      .where({ type: 'admin_api_call', actor_id: job.clientId });
    expect(rows.map((r) => r.detail.operation ?? JSON.parse(r.detail).operation)).toContain(
      'listKeys',
    );
  });

  it('refuses the admin API to a client no admin allowed it', async () => {
    const { clientId, clientSecret } = await server.clients.create({
      name: 'Plain job',
      redirectUris: [],
      grantTypes: ['client_credentials'],
    });
    const res = await tokenRequest(
      server.url,
      { clientId, clientSecret: clientSecret! },
      { grant_type: 'client_credentials', resource: apiAudience(server), scope: 'keys:write' },
    );
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_target');
  });

  it('answers 401 problem+json to no token, a made-up, a revoked, a foreign-audience token', async () => {
    const job = await apiClient(server, ['keys:write']);
    const none = await apiCall(server, undefined, 'GET', '/keys');
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="latchkey-admin"');
    check('GET', '/keys', none);
    expect((await apiCall(server, 'made-up-token', 'GET', '/keys')).status).toBe(401);
    expect((await apiCall(server, 'a.b.c', 'GET', '/keys')).status).toBe(401);

    const revoked = await job.token();
    const res = await fetch(`${server.url}/token/revocation`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${job.clientId}:${job.clientSecret}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ token: revoked }),
    });
    expect(res.status).toBe(200);
    const after = await apiCall(server, revoked, 'GET', '/keys');
    expect(after.status).toBe(401);
    expect(after.body.type).toBe('urn:latchkey:problem:invalid-token');

    const foreign = await tokenRequest(server.url, job, {
      grant_type: 'client_credentials',
      resource: 'https://other-api.example.test',
      scope: 'read',
    });
    expect(foreign.status).toBe(200);
    expect((await apiCall(server, String(foreign.body.access_token), 'GET', '/keys')).status).toBe(
      401,
    );
    // The client is deleted: its tokens stop working.
    const token = await job.token();
    await server.clients.delete(job.clientId);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const gone = await apiCall(server, token, 'GET', '/keys');
    expect(gone.status).toBe(401);
  });

  it('answers unknown routes 404 and wrong methods 405, as problem+json', async () => {
    const token = await (await apiClient(server, ['keys:write'])).token();
    const missing = await apiCall(server, token, 'GET', '/nothing-here');
    expect(missing.status).toBe(404);
    expect(missing.body.type).toBe('urn:latchkey:problem:not-found');
    const wrong = await apiCall(server, token, 'DELETE', '/keys');
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toBe('GET');
  });

  it('lets a person use it only with the admin role and a second factor', async () => {
    const { clientId, clientSecret } = await server.clients.create({
      name: 'Admin console',
      redirectUris: [REDIRECT_URI],
      apiScopes: ['keys:write'],
    });
    const rp = await relyingParty(server.url, clientId, clientSecret);
    const person = { email: `boss-${storage}@example.test`, password: 'a long admin passphrase' };
    await server.users.create({ ...person, roles: ['admin'], emailVerified: true });
    const params = { scope: 'openid keys:write', resource: apiAudience(server) };

    const flow = new Flow(server, rp, person);
    await flow.start(params);
    await flow.login();
    const passwordOnly = await flow.tokens({ resource: apiAudience(server) });
    const refused = await apiCall(server, passwordOnly.access_token, 'GET', '/keys');
    expect(refused.status).toBe(403);
    expect(refused.body.type).toBe('urn:latchkey:problem:forbidden');

    const { secret } = await flow.enrolAuthenticator();
    const again = new Flow(server, rp, person);
    await again.start({ ...params, prompt: 'login' });
    await again.login();
    await again.submit('/mfa/totp', { code: await codeAt(secret, 30) });
    const withFactor = await again.tokens({ resource: apiAudience(server) });
    const ok = await apiCall(server, withFactor.access_token, 'GET', '/keys');
    expect(ok.status).toBe(200);
    const [row] = await server
      .db('audit_events')
      .where({ type: 'admin_api_call', actor_type: 'admin' })
      .orderBy('id', 'desc')
      .limit(1);
    expect(row.actor_id).toBe((await server.users.findByEmail(person.email))!.id);

    // Not an admin any more: refused at once.
    await server
      .db('users')
      .where({ email: person.email })
      .update({ roles: JSON.stringify([]) });
    expect((await apiCall(server, withFactor.access_token, 'GET', '/keys')).status).toBe(403);
  });
});

describe('admin API with JWT access tokens', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({
      ...(await storageEnv('embedded')),
      ADMIN_API_TOKEN_FORMAT: 'jwt',
    });
  });
  afterAll(async () => {
    await server?.cleanup();
  });

  it('verifies them with its own keys, and refuses one tampered with', async () => {
    const job = await apiClient(server, ['keys:write']);
    const token = await job.token();
    expect(token.split('.')).toHaveLength(3);
    expect((await apiCall(server, token, 'GET', '/keys')).status).toBe(200);
    const [header, payload, signature] = token.split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString());
    const forged = Buffer.from(JSON.stringify({ ...claims, scope: 'users:write' })).toString(
      'base64url',
    );
    expect((await apiCall(server, `${header}.${forged}.${signature}`, 'GET', '/keys')).status).toBe(
      401,
    );
    const unsigned = `${Buffer.from('{"alg":"none","typ":"at+jwt"}').toString('base64url')}.${payload}.`;
    expect((await apiCall(server, unsigned, 'GET', '/keys')).status).toBe(401);
  });
});
