import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { expect } from 'vitest';
import type { AdminScope } from '../../server/admin-api/scopes.ts';
import { codeAt, Flow } from './flow.ts';
import {
  REDIRECT_URI,
  relyingParty,
  tokenRequest,
  type ClientCredentials,
} from './relying-party.ts';
import type { TestServer } from './server.ts';

export const apiAudience = (server: TestServer) => `${server.url}/api/v1`;

/** A machine client allowed `scopes` of the admin API, and a fresh token of it. */
export async function apiClient(server: TestServer, scopes: AdminScope[], name = 'Admin job') {
  const { clientId, clientSecret } = await server.clients.create({
    name,
    redirectUris: [],
    grantTypes: ['client_credentials'],
    apiScopes: scopes,
  });
  const client: ClientCredentials = { clientId, clientSecret: clientSecret! };
  return { ...client, token: () => apiToken(server, client, scopes) };
}

/** An admin API access token of `client` for `scopes` (client_credentials). */
export async function apiToken(server: TestServer, client: ClientCredentials, scopes: string[]) {
  const res = await tokenRequest(server.url, client, {
    grant_type: 'client_credentials',
    resource: apiAudience(server),
    scope: scopes.join(' '),
  });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return String(res.body.access_token);
}

/** Parsed JSON as a test reads it: any property at any depth, checked by the assertions. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see above
export type Json = any;

export type ApiAnswer = { status: number; headers: Headers; body: Json };

/** One call of the admin API; the body parsed as JSON when it is JSON, else text. */
export async function apiCall(
  server: TestServer,
  token: string | undefined,
  method: string,
  path: string,
  { body, headers = {} }: { body?: unknown; headers?: Record<string, string> } = {},
): Promise<ApiAnswer> {
  const res = await fetch(`${server.url}/api/v1${path}`, {
    method,
    headers: {
      ...(token && { authorization: `Bearer ${token}` }),
      ...(body !== undefined && { 'content-type': 'application/json' }),
      ...headers,
    },
    ...(body !== undefined && { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await res.text();
  // JSON and its +json kinds (problem+json), not JSON Lines (application/jsonl).
  const json = /^application\/([\w.-]+\+)?json(;|$)/.test(res.headers.get('content-type') ?? '');
  return { status: res.status, headers: res.headers, body: json && text ? JSON.parse(text) : text };
}

type Document = { paths: Record<string, Record<string, Json>>; components?: unknown };

/**
 * Checks answers against the OpenAPI document the server publishes: the operation at `path`
 * (the document's template) and `method` documents the status, and the body matches its schema.
 */
export function documentChecker(document: Document) {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats.default(ajv);
  ajv.addSchema({ ...document, $id: 'openapi.json' } as never);
  return (method: string, template: string, answer: ApiAnswer) => {
    const operation = document.paths[template]?.[method.toLowerCase()];
    expect(operation, `${method} ${template} is documented`).toBeDefined();
    const response = operation.responses[String(answer.status)];
    expect(response, `${method} ${template} documents ${answer.status}`).toBeDefined();
    const type = (answer.headers.get('content-type') ?? '').split(';')[0]!;
    const media = response.content?.[type];
    if (!response.content) return expect(answer.body).toBe('');
    expect(media, `${method} ${template} ${answer.status} documents ${type}`).toBeDefined();
    const pointer = `openapi.json#/paths/${template.replaceAll('~', '~0').replaceAll('/', '~1')}/${method.toLowerCase()}/responses/${answer.status}/content/${type.replace('/', '~1')}/schema`;
    const validate = ajv.getSchema(pointer)!;
    const valid = validate(answer.body);
    expect(
      validate.errors ?? [],
      `${method} ${template} ${answer.status} matches its schema`,
    ).toEqual([]);
    expect(valid).toBe(true);
  };
}

/** An admin console: a code-flow client allowed `scopes` of the admin API, as a relying party. */
export async function adminConsole(server: TestServer, scopes: AdminScope[]) {
  const { clientId, clientSecret } = await server.clients.create({
    name: 'Admin console',
    redirectUris: [REDIRECT_URI],
    apiScopes: scopes,
  });
  return {
    rp: await relyingParty(server.url, clientId, clientSecret),
    params: { scope: `openid ${scopes.join(' ')}`, resource: apiAudience(server) },
  };
}

/** A person with `roles` who can sign in with a password. */
export async function person(server: TestServer, email: string, roles: string[]) {
  const user = { email, password: 'correct horse battery staple 42' };
  const { id } = await server.users.create({ ...user, roles, emailVerified: true });
  return { ...user, id };
}

/**
 * A person's admin API tokens from a sign-in with an authenticator app: enrolled in one browser
 * (the account pages), then a fresh sign-in in another with password and code. The second
 * browser's flow is returned too, to sign in again from the same session.
 */
/** A person's admin API token from a sign-in with the password alone (no second factor). */
export async function signInWithPasswordOnly(
  server: TestServer,
  { rp, params }: Awaited<ReturnType<typeof adminConsole>>,
  user: { email: string; password: string },
) {
  const flow = new Flow(server, rp, user);
  await flow.start(params);
  await flow.login();
  return flow.tokens({ resource: params.resource });
}

export async function signInWithSecondFactor(
  server: TestServer,
  console: Awaited<ReturnType<typeof adminConsole>>,
  user: { email: string; password: string },
) {
  const { rp, params } = console;
  const first = new Flow(server, rp, user);
  await first.start(params);
  await first.login();
  const { secret } = await first.enrolAuthenticator();
  const flow = new Flow(server, rp, user);
  await flow.start({ ...params, prompt: 'login' });
  await flow.login();
  await flow.submit('/mfa/totp', { code: await codeAt(secret, 30) });
  const tokens = await flow.tokens({ resource: params.resource });
  return { flow, secret, tokens };
}
