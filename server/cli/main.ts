#!/usr/bin/env node
import { userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import type { Knex } from 'knex';
import { ConfigError, loadConfig, type Config } from '../../config/load.ts';
import { withDevSecrets } from '../../config/dev-secrets.ts';
import { closeDb, openDb, type Db } from '../db.ts';
import { migrate } from '../migrate.ts';
import { createLogger } from '../log.ts';
import { closeRedis, openRedis } from '../redis.ts';
import { createServices, type Services } from '../services.ts';
import { auditCommands } from './audit.ts';
import { clientAndKeyCommands } from './clients.ts';
import { generatedPassword, options, UsageError, type Command } from './command.ts';
import { ldapCommands } from './ldap.ts';
import { userCommands } from './users.ts';

const USAGE = `latchkey <command>

  migrate                                   apply pending database migrations
  users create --email E [--password P] [--name N] [--role R ...]
  users set-password --email E [--password P]
  users disable --email E
  users reset-mfa --email E                 remove every second factor (a lost phone); the owner is emailed
  users unlock --email E                    end a lockout now, or the owner's lock (forget failed sign-ins)
  users force-reset --email E               old password stops working, sessions end, a reset link is emailed
  users delete --email E                    delete the account (as the owner can at /account/delete)
  clients create --name N --redirect-uri U [--redirect-uri U ...] [--public]
                 [--grant-type G ...] [--cors-origin O ...] [--post-logout-redirect-uri U ...]
                 [--id-token-alg ES256|EdDSA|RS256]
                 [--pkce-optional]          an old confidential client that cannot send PKCE
                 [--api-scope S ...]        admin API scopes it may have (users:read, users:write, ...)
  clients list
  clients delete <client_id>
  keys rotate                               announce new signing keys (they sign after KEY_ANNOUNCE_SECONDS)
  keys list
  audit export [--since T] [--until T] [--user EMAIL|ID]
                                            audit rows as JSON Lines on stdout, oldest first;
                                            T is ISO 8601 (2025-01-31 or 2025-01-31T12:00:00Z), until excluded
  audit prune                               archive and delete audit rows older than AUDIT_RETENTION_DAYS
  ldap sync [--dry-run]                     a full directory sync now: create, update, disable directory users
  ldap test --login L                       bind as L (password from stdin or typed) and show the mapped claims

A password left out is generated and printed once. Uses the same environment as the server.`;

const COMMANDS: Record<string, Command> = {
  migrate: {
    async run({ db }) {
      const applied = await migrate(db);
      return applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date';
    },
  },
  ...userCommands,
  ...clientAndKeyCommands,
  ...auditCommands,
  ...ldapCommands,
};

function parse(argv: string[]) {
  const { values, positionals } = parseArgs({ args: argv, options, allowPositionals: true });
  const [area, verb, arg] = positionals;
  const name = `${area} ${verb ?? ''}`.trim();
  const command = COMMANDS[name];
  if (!command)
    throw new UsageError(area ? `unknown command: ${positionals.join(' ')}` : 'no command given');
  return { name, command, values, arg };
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
let db: Db | undefined;
// Connected only by a command that uses it (sign-outs, rate-limit counters).
const redis = openRedis(config, { lazyConnect: true });
let services: Services | undefined;
try {
  db = await openDb({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolMax: 2 });
  if (argv[0] !== 'migrate') await migrate(db);
  const { name, command, values: v, arg } = parse(argv);
  services = createServices({ config, db, redis, log: createLogger('warn') });
  const { audit } = services;
  // A changing command is recorded with the admin's OS user as the actor, and the user it is
  // about by id: an address in the trail would outlive the account's deletion.
  const event = async () =>
    command.audit && {
      type: command.audit,
      outcome: 'success' as const,
      actor: { type: 'admin' as const, id: userInfo().username },
      subject: v.email ? (await services!.users.findByEmail(v.email))?.id : (arg ?? v.name),
      detail: { command: name },
    };
  let recorded = false;
  const recordWithin = async (trx: Knex.Transaction) => {
    const row = await event();
    if (row) await audit.within(trx, row);
    recorded = true;
  };
  const output = await command.run({
    ...services,
    v,
    arg,
    generated: generatedPassword,
    recordWithin,
  });
  if (output !== undefined) console.log(output);
  const row = recorded ? undefined : await event();
  if (row) await audit(row);
  process.exitCode = 0;
} catch (err) {
  console.error(`latchkey: ${(err as Error).message ?? String(err)}`);
  if (err instanceof UsageError) console.error(`\n${USAGE}`);
  process.exitCode = 1;
} finally {
  await services?.close();
  if (db) await closeDb(db);
  await closeRedis(redis);
}
