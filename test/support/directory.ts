import { Writable } from 'node:stream';
import { afterAll, beforeAll } from 'vitest';
import { createAdapterFactory } from '../../adapters/index.ts';
import { loadConfig } from '../../config/load.ts';
import { createAccountSignOut } from '../../server/users/sign-out.ts';
import { createAudit } from '../../server/audit/audit.ts';
import type { Db } from '../../server/db.ts';
import { createDirectory, type Directory } from '../../server/ldap/directory.ts';
import type { LinkedUser } from '../../server/ldap/linked-users.ts';
import { createLogger } from '../../server/log.ts';
import { tempEmbeddedDb } from './embedded-db.ts';
import { startSlapd, type Slapd } from './slapd.ts';

export type TestDirectory = {
  directory: Directory;
  db: Db;
  /** Log lines written so far (JSON). */
  logs: string[];
  /** Another directory, other settings, over the same database (closed by cleanup). */
  another(env: Record<string, string>): Directory;
  /** The local user linked to a directory entry, found by email. */
  localUser(email: string): Promise<LinkedUser | undefined>;
  cleanup(): Promise<void>;
};

// Only there for loadConfig to accept the environment: nothing here is sealed or signed.
export const SECRETS = {
  SEALING_KEY: Buffer.alloc(32, 9).toString('base64'),
  COOKIE_KEYS: 'directory-tests-cookie-key-0123456789abcdef',
};

/** The config.ldap that loadConfig makes of these LDAP_* settings. */
export function ldapConfigOf(env: Record<string, string>) {
  const config = loadConfig({
    ...SECRETS,
    NODE_ENV: 'test',
    DATA_DIR: '/nonexistent',
    ...env,
  });
  if (!config.ldap) throw new Error('LDAP_URL missing');
  return config.ldap;
}

/** A directory as the server builds it, over a fresh migrated PGlite database. */
export async function startTestDirectory(env: Record<string, string>): Promise<TestDirectory> {
  const { db, cleanup } = await tempEmbeddedDb();
  const logs: string[] = [];
  const log = createLogger(
    'debug',
    new Writable({
      write(chunk, _enc, done) {
        logs.push(String(chunk));
        done();
      },
    }),
  );
  const adapter = createAdapterFactory({
    db,
    findClient: async () => undefined,
    refreshReuseGraceSeconds: 0,
  });
  const opened: Directory[] = [];
  const another = (settings: Record<string, string>) => {
    const directory = createDirectory({
      config: ldapConfigOf(settings),
      db,
      log,
      audit: createAudit(db, log),
      signOut: createAccountSignOut({ db, adapter }),
    });
    opened.push(directory);
    return directory;
  };
  return {
    directory: another(env),
    another,
    db,
    logs,
    localUser: (email) =>
      db<LinkedUser>('users').whereRaw('lower(email) = ?', [email.toLowerCase()]).first(),
    async cleanup() {
      for (const directory of opened) directory.close();
      await cleanup();
    },
  };
}

/**
 * A test slapd and a directory over it for the tests of one describe block: started before
 * them, removed after. `settings` are LDAP_* overrides of the slapd's own.
 */
export function useSlapdDirectory({
  settings = {},
  requireTls = false,
}: { settings?: Record<string, string>; requireTls?: boolean } = {}) {
  const fixture = {} as { slapd: Slapd; t: TestDirectory };
  beforeAll(async () => {
    fixture.slapd = await startSlapd({ requireTls });
    fixture.t = await startTestDirectory(fixture.slapd.env(settings));
  });
  afterAll(async () => {
    await fixture.t?.cleanup();
    await fixture.slapd?.cleanup();
  });
  return fixture;
}
