#!/usr/bin/env node
import { randomBytes } from 'node:crypto';
import { userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, type Config } from '../../config/load.ts';
import { withDevSecrets } from '../../config/dev-secrets.ts';
import { createAdapterFactory } from '../../adapters/index.ts';
import { createEmailTokens } from '../accounts/email-tokens.ts';
import { forcePasswordReset } from '../accounts/force-reset.ts';
import { createAccountSignOut } from '../accounts/sign-out.ts';
import { createUserStore } from '../accounts/users.ts';
import { createAudit } from '../audit/audit.ts';
import { createLogger } from '../log.ts';
import { openRedis } from '../redis.ts';
import { createMailer } from '../mail/mailer.ts';
import { mailOptions } from '../mail/options.ts';
import { createPasswordPolicy } from '../security/password-policy.ts';
import { createClientStore } from '../clients/store.ts';
import { closeDb, migrate, openDb, type Db } from '../db.ts';
import { retainSeconds, rotateKeys } from '../keys/manager.ts';
import { loadKeyView, SIGNING_ALGS } from '../keys/store.ts';
import { createPasswordHasher } from '../security/passwords.ts';

const USAGE = `latchkey <command>

  migrate                                   apply pending database migrations
  users create --email E [--password P] [--name N] [--role R ...]
  users set-password --email E [--password P]
  users disable --email E
  users force-reset --email E               old password stops working, sessions end, a reset link is emailed
  clients create --name N --redirect-uri U [--redirect-uri U ...] [--public]
                 [--grant-type G ...] [--cors-origin O ...] [--post-logout-redirect-uri U ...]
                 [--id-token-alg ES256|EdDSA|RS256]
  clients list
  clients delete <client_id>
  keys rotate                               announce new signing keys (they sign after KEY_ANNOUNCE_SECONDS)
  keys list

A password left out is generated and printed once. Uses the same environment as the server.`;

const options = {
  email: { type: 'string' },
  password: { type: 'string' },
  name: { type: 'string' },
  role: { type: 'string', multiple: true },
  'redirect-uri': { type: 'string', multiple: true },
  'post-logout-redirect-uri': { type: 'string', multiple: true },
  'grant-type': { type: 'string', multiple: true },
  'cors-origin': { type: 'string', multiple: true },
  'id-token-alg': { type: 'string' },
  public: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

class UsageError extends Error {}

function need<T>(value: T | undefined, what: string): T {
  if (value === undefined || value === '') throw new UsageError(`missing ${what}`);
  return value;
}

function signingAlg(alg: string | undefined): string | undefined {
  if (alg !== undefined && !(SIGNING_ALGS as readonly string[]).includes(alg))
    throw new UsageError(`--id-token-alg must be one of ${SIGNING_ALGS.join(', ')}`);
  return alg;
}

async function run(argv: string[], config: Config, db: Db): Promise<string> {
  const { values: v, positionals } = parseArgs({ args: argv, options, allowPositionals: true });
  const [area, verb, arg] = positionals;
  const users = () => createUserStore(db, createPasswordHasher(config.argon2));
  const clients = () => createClientStore(db, config.sealingKey, 0);
  const generated = (p: string | undefined) => p ?? randomBytes(12).toString('base64url');

  switch (`${area} ${verb ?? ''}`.trim()) {
    case 'migrate': {
      const applied = await migrate(db);
      return applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date';
    }
    case 'users create': {
      const password = generated(v.password);
      const user = await users().create({
        email: need(v.email, '--email'),
        password,
        name: v.name,
        roles: v.role,
        emailVerified: true,
      });
      return `created user ${user.id} (${user.email})${v.password ? '' : `\npassword: ${password}  <- shown once`}`;
    }
    case 'users set-password': {
      const store = users();
      const user = await store.findByEmail(need(v.email, '--email'));
      if (!user) throw new UsageError(`no user with email ${v.email}`);
      const password = generated(v.password);
      await store.setPassword(user.id, password);
      return `password changed for ${user.email}${v.password ? '' : `\npassword: ${password}  <- shown once`}`;
    }
    case 'users force-reset': {
      const store = users();
      const user = await store.findByEmail(need(v.email, '--email'));
      if (!user) throw new UsageError(`no user with email ${v.email}`);
      const log = createLogger('warn');
      const redis = openRedis(config);
      const mailer = createMailer(mailOptions(config), { log });
      try {
        const passwords = createPasswordHasher(config.argon2);
        const adapter = createAdapterFactory({
          db,
          redis,
          findClient: async () => undefined,
          refreshReuseGraceSeconds: 0,
        });
        const { emailed, link } = await forcePasswordReset(user, {
          config,
          users: store,
          policy: createPasswordPolicy(config.passwordPolicy, { db, passwords }),
          tokens: createEmailTokens(db),
          signOut: createAccountSignOut({ db, redis, adapter }),
          mailer,
          log,
        });
        const ends = `signed out everywhere; the old password no longer works`;
        return emailed
          ? `${user.email}: ${ends}; a reset link was emailed`
          : `${user.email}: ${ends}; the email could not be sent — give the owner this link (valid ${Math.round(config.emailLinks.resetTtl / 60)} minutes):\n${link}`;
      } finally {
        mailer.close();
        await redis?.quit();
      }
    }
    case 'users disable': {
      const store = users();
      const user = await store.findByEmail(need(v.email, '--email'));
      if (!user) throw new UsageError(`no user with email ${v.email}`);
      await store.setDisabled(user.id, true);
      return `disabled ${user.email}`;
    }
    case 'clients create': {
      const grantTypes = v['grant-type'];
      const redirectUris = v['redirect-uri'] ?? [];
      if (
        !redirectUris.length &&
        !(grantTypes?.length === 1 && grantTypes[0] === 'client_credentials')
      )
        throw new UsageError(
          'missing --redirect-uri (or use --grant-type client_credentials alone)',
        );
      const corsOrigins =
        v['cors-origin'] ??
        (v.public ? [...new Set(redirectUris.map((u) => new URL(u).origin))] : []);
      const { clientId, clientSecret } = await clients().create({
        name: need(v.name, '--name'),
        redirectUris,
        postLogoutRedirectUris: v['post-logout-redirect-uri'],
        grantTypes,
        public: v.public,
        corsOrigins,
        idTokenAlg: signingAlg(v['id-token-alg']),
      });
      return `client_id: ${clientId}\n${clientSecret ? `client_secret: ${clientSecret}  <- shown once, stored sealed` : 'public client: no secret, PKCE required'}`;
    }
    case 'clients list': {
      const list = await clients().list();
      return (
        list
          .map(
            (c) =>
              `${c.clientId}\t${String(c.metadata.client_name)}\t${JSON.stringify(c.metadata.redirect_uris)}`,
          )
          .join('\n') || 'no clients'
      );
    }
    case 'clients delete': {
      const clientId = need(arg, '<client_id>');
      if (!(await clients().delete(clientId))) throw new UsageError(`no client ${clientId}`);
      return `deleted ${clientId}`;
    }
    case 'keys rotate': {
      const kids = await rotateKeys(db, config);
      const at = new Date(Date.now() + config.keys.announceSeconds * 1000).toISOString();
      return kids.length
        ? `announced ${kids.join(', ')}; they start signing at ${at}`
        : 'another process is rotating; try again';
    }
    case 'keys list': {
      const view = await loadKeyView(db, config.sealingKey, retainSeconds(config));
      return view.keys
        .map(
          (k) =>
            `${k.kid}\t${k.alg}\t${k.state}\tactivates ${k.activateAt.toISOString()}${k.unpublishAt ? `\tleaves JWKS ${k.unpublishAt.toISOString()}` : ''}`,
        )
        .join('\n');
    }
    default:
      throw new UsageError(area ? `unknown command: ${positionals.join(' ')}` : 'no command given');
  }
}

const argv = process.argv.slice(2);
if (argv.length === 0 || argv.includes('--help') || argv.includes('-h')) {
  console.log(USAGE);
  process.exit(argv.length === 0 ? 2 : 0);
}
let config: Config;
try {
  config = loadConfig(withDevSecrets(process.env));
} catch (err) {
  console.error(err instanceof ConfigError ? err.message : err);
  process.exit(1);
}
/** What each changing command is called in the audit trail. */
const ADMIN_EVENTS: Record<string, string> = {
  'users create': 'user_created',
  'users set-password': 'password_set_by_admin',
  'users force-reset': 'password_reset_forced',
  'users disable': 'user_disabled',
  'clients create': 'client_created',
  'clients delete': 'client_deleted',
  'keys rotate': 'keys_rotated',
};

async function auditAdminAction(db: Db, args: string[]) {
  const command = args.slice(0, 2).join(' ');
  const type = ADMIN_EVENTS[command];
  if (!type) return;
  const { values, positionals } = parseArgs({ args, options, allowPositionals: true });
  const subject = values.email ?? positionals[2] ?? values.name;
  await createAudit(
    db,
    createLogger('warn'),
  )({
    type,
    outcome: 'success',
    actor: { type: 'admin', id: userInfo().username },
    subject,
    detail: { command },
  });
}

let db: Db | undefined;
try {
  db = openDb({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolMax: 2 });
  if (argv[0] !== 'migrate') await migrate(db);
  console.log(await run(argv, config, db));
  await auditAdminAction(db, argv);
  process.exitCode = 0;
} catch (err) {
  console.error(`latchkey: ${(err as Error).message ?? String(err)}`);
  if (err instanceof UsageError) console.error(`\n${USAGE}`);
  process.exitCode = 1;
} finally {
  if (db) await closeDb(db);
}
