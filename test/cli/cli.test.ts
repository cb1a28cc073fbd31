import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../config/load.ts';
import type { UserStore } from '../../server/users/store.ts';
import { closeDb, openDb, type Db } from '../../server/db.ts';
import { createLogger } from '../../server/log.ts';
import { createServices, type Services } from '../../server/services.ts';
import { runCli, type CliResult } from '../support/cli.ts';
import { freshPostgresUrl } from '../support/databases.ts';
import { TEST_SECRETS, startTestServer } from '../support/server.ts';

const USAGE_HEAD = 'latchkey <command>';

describe('latchkey CLI as a real process', () => {
  let env: Record<string, string>;
  let db: Db;
  let services: Services;
  let users: UserStore;

  const cli = (...args: string[]): Promise<CliResult> => runCli(args, env);

  beforeAll(async () => {
    env = {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'test',
      DATABASE_URL: await freshPostgresUrl(),
      DATA_DIR: mkdtempSync(join(tmpdir(), 'latchkey-cli-')),
      ...TEST_SECRETS,
    };
    const config = loadConfig(env);
    db = await openDb({ databaseUrl: env.DATABASE_URL, dataDir: env.DATA_DIR!, poolMax: 2 });
    services = createServices({ config, db, log: createLogger('silent') });
    users = services.users;
  });
  afterAll(async () => {
    await services?.close();
    if (db) await closeDb(db);
    if (env) rmSync(env.DATA_DIR!, { recursive: true, force: true });
  });

  it('migrate applies the schema once, then reports the database up to date', async () => {
    const first = await cli('migrate');
    expect(first).toMatchObject({ code: 0, stderr: '' });
    expect(first.stdout).toMatch(/^applied: \d+_initial(, \d+_[a-z_]+)+\n$/);
    expect(await cli('migrate')).toMatchObject({ code: 0, stdout: 'database is up to date\n' });
  });

  it('users create prints a generated password exactly once, and it authenticates', async () => {
    const res = await cli('users', 'create', '--email', 'ada@example.test', '--role', 'admin');
    expect(res.code).toBe(0);
    const match =
      /^created user [0-9a-f-]{36} \(ada@example\.test\)\npassword: (\S+) {2}<- shown once\n$/.exec(
        res.stdout,
      );
    expect(match, res.stdout).not.toBeNull();
    const password = match![1]!;
    expect(res.stdout.split(password)).toHaveLength(2);
    const user = await users.authenticate('ada@example.test', password);
    expect(user?.roles).toEqual(['admin']);
    expect(user?.password_hash).toMatch(/^\$argon2id\$/);
    expect(user?.password_hash).not.toContain(password);
    // Recorded about the user by id: an address in the trail would outlive the account.
    const row = await db('audit_events').where({ type: 'user_created' }).first();
    expect(row).toMatchObject({ actor_type: 'admin', subject: user!.id });
  });

  it('users create with --password prints no password; a second account with that email is refused', async () => {
    const res = await cli(
      'users',
      'create',
      '--email',
      'bob@example.test',
      '--password',
      'b0b-pw-123',
    );
    expect(res.code).toBe(0);
    expect(res.stdout).not.toContain('password');
    expect(await users.authenticate('bob@example.test', 'b0b-pw-123')).toBeDefined();
    const again = await cli('users', 'create', '--email', 'BOB@example.test');
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^latchkey: a user with that email exists/);
  });

  it('users set-password replaces the password: the old one stops working', async () => {
    const res = await cli(
      'users',
      'set-password',
      '--email',
      'bob@example.test',
      '--password',
      'n3w-b0b-pw',
    );
    expect(res).toMatchObject({ code: 0, stdout: 'password changed for bob@example.test\n' });
    expect(await users.authenticate('bob@example.test', 'b0b-pw-123')).toBeUndefined();
    expect(await users.authenticate('bob@example.test', 'n3w-b0b-pw')).toBeDefined();
    const unknown = await cli('users', 'set-password', '--email', 'nobody@example.test');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('latchkey: no user with email nobody@example.test');
  });

  it('users disable: the right password no longer authenticates', async () => {
    const res = await cli('users', 'disable', '--email', 'bob@example.test');
    expect(res).toMatchObject({ code: 0, stdout: 'disabled bob@example.test\n' });
    expect((await users.findByEmail('bob@example.test'))?.disabled).toBe(true);
    expect(await users.authenticate('bob@example.test', 'n3w-b0b-pw')).toBeUndefined();
  });

  it.each([
    ['users', 'create'],
    ['users', 'disable'],
    ['users', 'set-password'],
  ])('%s %s without --email exits 1 naming the missing option', async (...command) => {
    const res = await cli(...command);
    expect(res.code).toBe(1);
    expect(res.stdout).toBe('');
    expect(res.stderr).toMatch(/^latchkey: missing --email\n/);
    expect(res.stderr).toContain(USAGE_HEAD);
  });

  describe('clients', () => {
    let clientId: string;
    let secret: string;

    it('clients create prints client_id and secret once; the table keeps the secret only sealed', async () => {
      const res = await cli(
        'clients',
        'create',
        '--name',
        'My app',
        '--redirect-uri',
        'https://app.example.test/cb',
      );
      expect(res.code).toBe(0);
      const match =
        /^client_id: (\S+)\nclient_secret: (\S+) {2}<- shown once, stored sealed\n$/.exec(
          res.stdout,
        );
      expect(match, res.stdout).not.toBeNull();
      [, clientId, secret] = match as unknown as [string, string, string];
      const row = await db('clients').where({ client_id: clientId }).first();
      expect(row.metadata).toMatchObject({
        client_name: 'My app',
        redirect_uris: ['https://app.example.test/cb'],
        token_endpoint_auth_method: 'client_secret_basic',
      });
      expect(row.secret_sealed).toBeTruthy();
      expect(JSON.stringify(row)).not.toContain(secret);
      // Sealed with the configured key: the provider's view unseals the very secret printed.
      expect((await services.clients.findForProvider(clientId))?.client_secret).toBe(secret);
    });

    it('clients create --public makes a secretless client that must use PKCE', async () => {
      const res = await cli(
        'clients',
        'create',
        '--public',
        '--name',
        'SPA',
        '--redirect-uri',
        'https://spa.example.test/cb',
      );
      expect(res.code).toBe(0);
      expect(res.stdout).toContain('public client: no secret, PKCE required');
      const id = /^client_id: (\S+)/.exec(res.stdout)![1];
      const row = await db('clients').where({ client_id: id }).first();
      expect(row.secret_sealed).toBeNull();
      expect(row.metadata.token_endpoint_auth_method).toBe('none');
    });

    it('clients create --pkce-optional stores the opt-out; a public client cannot have it', async () => {
      const res = await cli(
        'clients',
        'create',
        '--pkce-optional',
        '--name',
        'Legacy',
        '--redirect-uri',
        'https://legacy.example.test/cb',
      );
      expect(res.code).toBe(0);
      const id = /^client_id: (\S+)/.exec(res.stdout)![1];
      const row = await db('clients').where({ client_id: id }).first();
      expect(row.metadata).toMatchObject({ pkce_required: false });
      const refused = await cli(
        'clients',
        'create',
        '--public',
        '--pkce-optional',
        '--name',
        'SPA',
        '--redirect-uri',
        'https://spa.example.test/cb',
      );
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/^latchkey: --pkce-optional: a public client must use PKCE/);
    });

    it('clients create without --redirect-uri exits 1 and says what is missing', async () => {
      const res = await cli('clients', 'create', '--name', 'Nowhere');
      expect(res.code).toBe(1);
      expect(res.stderr).toMatch(
        /^latchkey: --redirect-uri: at least one, unless the only grant type/,
      );
    });

    it('clients list shows the client with its name and redirect URIs', async () => {
      const res = await cli('clients', 'list');
      expect(res.code).toBe(0);
      expect(res.stdout).toContain(`${clientId}\tMy app\t["https://app.example.test/cb"]`);
      expect(res.stdout).not.toContain(secret);
    });

    it('clients delete removes it; deleting it again exits 1', async () => {
      expect(await cli('clients', 'delete', clientId)).toMatchObject({
        code: 0,
        stdout: `deleted ${clientId}\n`,
      });
      expect(await db('clients').where({ client_id: clientId }).first()).toBeUndefined();
      expect((await cli('clients', 'list')).stdout).not.toContain(clientId);
      const again = await cli('clients', 'delete', clientId);
      expect(again.code).toBe(1);
      expect(again.stderr).toContain(`latchkey: no client ${clientId}`);
    });
  });

  describe('keys', () => {
    const rows = (out: string) =>
      out
        .trim()
        .split('\n')
        .map((l) => l.split('\t'));

    it('keys list shows an active ES256, EdDSA and RS256 key after a server start', async () => {
      const dataDir = mkdtempSync(join(tmpdir(), 'latchkey-cli-server-'));
      const server = await startTestServer({ ...env, DATA_DIR: dataDir, DEMO_CLIENT: 'false' });
      await server.cleanup();
      const res = await cli('keys', 'list');
      expect(res.code).toBe(0);
      const keys = rows(res.stdout);
      expect(keys.map(([, alg, state]) => `${alg}:${state}`).sort()).toEqual([
        'ES256:active',
        'EdDSA:active',
        'RS256:active',
      ]);
    });

    it('keys rotate announces a new key per algorithm, listed as announced', async () => {
      const res = await cli('keys', 'rotate');
      expect(res.code).toBe(0);
      const match = /^announced (\S+), (\S+), (\S+); they start signing at (\S+)\n$/.exec(
        res.stdout,
      );
      expect(match, res.stdout).not.toBeNull();
      expect(Date.parse(match![4]!)).toBeGreaterThan(Date.now());
      const keys = rows((await cli('keys', 'list')).stdout);
      const announced = keys.filter(([, , state]) => state === 'announced');
      expect(announced.map(([kid]) => kid).sort()).toEqual(match!.slice(1, 4).sort());
      expect(announced.map(([, alg]) => alg).sort()).toEqual(['ES256', 'EdDSA', 'RS256']);
      expect(keys.filter(([, , state]) => state === 'active')).toHaveLength(3);
    });
  });

  it('an unknown command exits 1 with the usage', async () => {
    const res = await cli('frobnicate', 'now');
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/^latchkey: unknown command: frobnicate now\n/);
    expect(res.stderr).toContain(USAGE_HEAD);
  });

  it('--help prints the usage and exits 0; no arguments prints it and exits 2', async () => {
    const help = await cli('--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toContain(USAGE_HEAD);
    for (const command of ['migrate', 'users create', 'clients create', 'keys rotate'])
      expect(help.stdout).toContain(command);
    const none = await cli();
    expect(none.code).toBe(2);
    expect(none.stdout).toContain(USAGE_HEAD);
  });
});
