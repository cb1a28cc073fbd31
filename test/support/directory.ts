import { Writable } from 'node:stream';
import { afterAll, beforeAll } from 'vitest';
import { loadConfig } from '../../config/load.ts';
import type { Db } from '../../server/db.ts';
import type { Directory } from '../../server/ldap/directory.ts';
import type { LinkedUser } from '../../server/ldap/linked-users.ts';
import { createLogger } from '../../server/log.ts';
import { createServices, type Services } from '../../server/services.ts';
import { tempEmbeddedDb } from './embedded-db.ts';
import { startSlapd, type Slapd } from './slapd.ts';

export type TestDirectory = {
  directory: Directory;
  /** The service graph the directory belongs to (its users, tokens …), over `db`. */
  services: Services;
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

/** The config that loadConfig makes of these LDAP_* settings (LDAP_URL among them). */
function configOf(env: Record<string, string>) {
  const config = loadConfig({
    ...SECRETS,
    NODE_ENV: 'test',
    DATA_DIR: '/nonexistent',
    // The cheapest argon2 allowed: the local users these tests make need no more.
    ARGON2_MEMORY_KIB: '8192',
    ARGON2_TIME_COST: '1',
    ...env,
  });
  if (!config.ldap) throw new Error('LDAP_URL missing');
  return config;
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
  const opened: Services[] = [];
  const servicesOf = (settings: Record<string, string>) => {
    const services = createServices({ config: configOf(settings), db, log });
    opened.push(services);
    return services;
  };
  const services = servicesOf(env);
  return {
    directory: services.directory!,
    services,
    another: (settings) => servicesOf(settings).directory!,
    db,
    logs,
    localUser: (email) =>
      db<LinkedUser>('users').whereRaw('lower(email) = ?', [email.toLowerCase()]).first(),
    async cleanup() {
      for (const one of opened) await one.close();
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
