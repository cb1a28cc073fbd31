import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeDb, openDb, type Db } from '../../server/db.ts';
import { runCli } from '../support/cli.ts';
import { freshPostgresUrl } from '../support/databases.ts';
import { SECRETS } from '../support/directory.ts';
import { PEOPLE, SEEDED, startSlapd, type Slapd } from '../support/slapd.ts';

const { alice } = SEEDED;

describe('latchkey ldap commands as a real process', () => {
  let slapd: Slapd;
  let env: Record<string, string>;
  let db: Db;
  beforeAll(async () => {
    slapd = await startSlapd();
    env = {
      NODE_ENV: 'test',
      DATABASE_URL: await freshPostgresUrl(),
      DATA_DIR: mkdtempSync(join(tmpdir(), 'latchkey-ldap-cli-')),
      ...SECRETS,
      ...slapd.env(),
    };
    db = await openDb({ databaseUrl: env.DATABASE_URL, dataDir: env.DATA_DIR!, poolMax: 2 });
  });
  afterAll(async () => {
    if (db) await closeDb(db);
    if (env) rmSync(env.DATA_DIR!, { recursive: true, force: true });
    await slapd?.cleanup();
  });

  it('ldap test binds as the login and shows the mapped claims, never the password', async () => {
    const res = await runCli(['ldap', 'test', '--login', 'alice'], env, `${alice.password}\n`);
    expect(res).toMatchObject({ code: 0, stderr: '' });
    expect(res.stdout).toContain(`email: ${alice.email}\n`);
    expect(res.stdout).toContain(`name: ${alice.cn}\n`);
    expect(res.stdout).toContain('roles: admin, staff\n');
    expect(res.stdout).toMatch(/^id: [0-9a-f-]{36}$/m);
    expect(res.stdout + res.stderr).not.toContain(alice.password);
    expect(await db('users').where({ source: 'ldap' })).toEqual([]);
  });

  it('ldap test says the directory refused a wrong password, without printing it', async () => {
    const res = await runCli(['ldap', 'test', '--login', 'alice'], env, 'not-the-password\n');
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('the directory refused alice');
    expect(res.stdout + res.stderr).not.toContain('not-the-password');
  });

  it('ldap sync --dry-run reports, changes nothing; ldap sync then does it, audited as the admin', async () => {
    const dry = await runCli(['ldap', 'sync', '--dry-run'], env);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(
      /^full sync, dry run \(nothing changed\): would create 4, update 0, disable 0; 0 errors\n/,
    );
    expect(dry.stdout.match(/^ {2}create\t/gm)).toHaveLength(4);
    expect(await db('users').where({ source: 'ldap' })).toEqual([]);

    const real = await runCli(['ldap', 'sync'], env);
    expect(real.code).toBe(0);
    expect(real.stdout).toMatch(/^full sync: created 4, updated 0, disabled 0; 0 errors\n/);
    expect(await db('users').where({ source: 'ldap' })).toHaveLength(4);
    const events = await db('audit_events').where({ type: 'directory_sync' }).orderBy('id');
    expect(events.map((e) => [e.actor_type, e.detail.dryRun])).toEqual([
      ['admin', true],
      ['admin', false],
    ]);
  });

  it('ldap sync lists the first 100 changes, and says how many more it made', async () => {
    await slapd.asAdmin(async (admin) => {
      for (let i = 0; i < 103; i++)
        await admin.add(`uid=more${i},${PEOPLE}`, {
          objectClass: 'inetOrgPerson',
          uid: `more${i}`,
          cn: `More ${i}`,
          sn: 'More',
          mail: `more${i}@example.test`,
        });
    });
    const res = await runCli(['ldap', 'sync'], env);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/^full sync: created 103, updated 0, disabled 0; 0 errors\n/);
    expect(res.stdout.match(/^ {2}create\t/gm)).toHaveLength(100);
    expect(res.stdout).toContain('\n  … and 3 more changes\n');
    expect(await db('users').where({ source: 'ldap' })).toHaveLength(107);
  });

  it('explains what is missing', async () => {
    const noLogin = await runCli(['ldap', 'test'], env, '');
    expect(noLogin.code).toBe(1);
    expect(noLogin.stderr).toContain('missing --login');
    const noDirectory = await runCli(['ldap', 'sync'], { ...env, LDAP_URL: '' });
    expect(noDirectory.code).toBe(1);
    expect(noDirectory.stderr).toContain('LDAP_URL is not set');
  });
});
