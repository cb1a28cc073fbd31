// The benchmark's reference: a bare oidc-provider (the version in node_modules, Latchkey's own),
// configured in the style of its repository's example (panva/node-oidc-provider,
// example/support/configuration.js and example/routes/koa.js), run by the benchmark as a child
// process like Latchkey's server. Its adapter is oidc-provider's in-memory default, or the
// example's Redis adapter when the configuration gives a Redis URL. Its login step verifies the
// password with argon2id (Latchkey's parameters, against a hash made at start); its consent step
// creates the grant, and a new session of the same account and client gets a grant from that
// consent, as Latchkey's does. Its pages are shaped for the benchmark's browser
// (scripts/bench/load.ts). No rate limits, audit, or anything else of Latchkey's: the engine
// alone. Configured by BARE_CONFIG (JSON).
// First, as in Latchkey's server: libuv's thread pool (argon2) sized to the cores.
import '../../server/thread-pool.ts';
import { generateKeyPairSync } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import Router from '@koa/router';
import argon2 from 'argon2';
import Provider, { type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import type { Argon2Params } from './load.ts';
import { exampleRedisAdapter } from './redis-example-adapter.ts';
import type { Client } from './target.ts';

export type BareConfig = {
  issuer: string;
  port: number;
  /** Confidential client_credentials client. */
  service: Client;
  /** Confidential code-flow client. */
  web: Client;
  redirectUri: string;
  user: { email: string; password: string };
  argon2: Argon2Params;
  /** Lifetimes in seconds, by model (also silences oidc-provider's notices about its defaults). */
  ttl: Record<string, number>;
  /** The example's Redis adapter on this server; oidc-provider's in-memory adapter without. */
  redisUrl?: string | undefined;
};

type Jwks = NonNullable<Configuration['jwks']>;

const config = JSON.parse(process.env.BARE_CONFIG ?? '') as BareConfig;
const ACCOUNT_ID = 'bench-account';
// The benchmark's browser posts back the hidden `csrf` field; this server, reached by nothing
// but the benchmark, checks it against a fixed value (Latchkey's is per interaction).
const CSRF = 'bare-reference-fixed-csrf';
const passwordHash = await argon2.hash(config.user.password, {
  type: argon2.argon2id,
  ...config.argon2,
});

// Latchkey signs ID tokens with ES256 by default.
const signingKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
  format: 'jwk',
});

/**
 * Consents given, by account and client: a new session's grant is built from them. In this
 * process on both adapters (one process; Latchkey keeps them in its database).
 */
const consents = new Map<string, { scope: string; claims: string[] }>();

async function adapter(): Promise<Configuration['adapter']> {
  if (!config.redisUrl) return undefined;
  const { Redis } = await import('ioredis');
  return exampleRedisAdapter(new Redis(config.redisUrl, { keyPrefix: 'oidc:' }));
}

const configuration: Configuration = {
  adapter: await adapter(),
  clients: [
    {
      client_id: config.service.id,
      client_secret: config.service.secret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
    },
    {
      client_id: config.web.id,
      client_secret: config.web.secret,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      redirect_uris: [config.redirectUri],
    },
  ],
  clientDefaults: { id_token_signed_response_alg: 'ES256' },
  cookies: { keys: ['bare-reference-cookie-key-0123456789abcdef'] },
  jwks: { keys: [{ ...signingKey, use: 'sig', alg: 'ES256' }] as Jwks['keys'] },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  ttl: config.ttl,
  claims: { email: ['email', 'email_verified'], profile: ['name'] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    // Latchkey's rule (RFC 7662 §4): a confidential client may introspect any token.
    introspection: {
      enabled: true,
      allowedPolicy: async (_ctx, client, token) =>
        client.clientAuthMethod !== 'none' || token.clientId === client.clientId,
    },
  },
  async findAccount(_ctx, sub) {
    if (sub !== ACCOUNT_ID) return undefined;
    return {
      accountId: sub,
      claims: async () => ({ sub, email: config.user.email, email_verified: true, name: 'Bench' }),
    };
  },
  async loadExistingGrant(ctx: KoaContextWithOIDC) {
    const { client, session, result, provider } = ctx.oidc;
    const grantId = result?.consent?.grantId || session?.grantIdFor(client!.clientId);
    if (grantId) return provider.Grant.find(grantId);
    const consent = session?.accountId && consents.get(`${session.accountId} ${client!.clientId}`);
    if (!consent) return undefined;
    const grant = new provider.Grant({ accountId: session.accountId, clientId: client!.clientId });
    grant.addOIDCScope(consent.scope);
    if (consent.claims.length) grant.addOIDCClaims(consent.claims);
    await grant.save();
    return grant;
  },
};

const provider = new Provider(config.issuer, configuration);
provider.on('server_error', (_ctx, err) => console.error('server_error', err));

function page(title: string, action: string, fields = ''): string {
  return `<!doctype html><title>${title}</title><form method="post" action="${action}"><input type="hidden" name="csrf" value="${CSRF}">${fields}<button>${title}</button></form>`;
}

async function form(req: IncomingMessage): Promise<URLSearchParams> {
  let body = '';
  req.setEncoding('utf8');
  for await (const chunk of req) body += chunk as string;
  const fields = new URLSearchParams(body);
  if (fields.get('csrf') !== CSRF) throw new Error('csrf mismatch');
  return fields;
}

const router = new Router();
router.use(async (ctx, next) => {
  ctx.set('cache-control', 'no-store');
  await next();
});

router.get('/interaction/:uid', async (ctx) => {
  const { uid, prompt } = await provider.interactionDetails(ctx.req, ctx.res);
  ctx.type = 'html';
  ctx.body =
    prompt.name === 'login'
      ? page(
          'Sign in',
          `/interaction/${uid}/login`,
          '<input name="email"><input type="password" name="password">',
        )
      : page('Authorize', `/interaction/${uid}/consent`);
});

router.post('/interaction/:uid/login', async (ctx) => {
  const { prompt } = await provider.interactionDetails(ctx.req, ctx.res);
  const fields = await form(ctx.req);
  // One verify whatever the address, as Latchkey does.
  const verified = await argon2.verify(passwordHash, fields.get('password') ?? '');
  if (prompt.name !== 'login' || !verified || fields.get('email') !== config.user.email) {
    ctx.status = 400;
    ctx.body = 'sign-in failed';
    return;
  }
  await provider.interactionFinished(
    ctx.req,
    ctx.res,
    { login: { accountId: ACCOUNT_ID } },
    { mergeWithLastSubmission: false },
  );
});

router.post('/interaction/:uid/consent', async (ctx) => {
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  await form(ctx.req);
  const { prompt, params, session } = details;
  if (prompt.name !== 'consent' || !session) throw new Error('not at the consent prompt');
  const clientId = params.client_id as string;
  const grant = details.grantId
    ? (await provider.Grant.find(details.grantId))!
    : new provider.Grant({ accountId: session.accountId, clientId });
  const missing = prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[] };
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  const grantId = await grant.save();
  consents.set(`${session.accountId} ${clientId}`, {
    scope: grant.getOIDCScope(),
    claims: grant.getOIDCClaims(),
  });
  await provider.interactionFinished(
    ctx.req,
    ctx.res,
    { consent: details.grantId ? {} : { grantId } },
    { mergeWithLastSubmission: true },
  );
});

provider.use(router.routes());
provider.listen(config.port, '127.0.0.1');
// A stop by signal exits normally, so that BENCH_CPU_PROF's profile is written.
process.once('SIGTERM', () => process.exit(0));
