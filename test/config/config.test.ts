import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultArgon2Concurrency } from '../../config/defaults.ts';
import { withDevSecrets } from '../../config/dev-secrets.ts';
import { ConfigError, loadConfig } from '../../config/load.ts';
import { TEST_SECRETS } from '../support/server.ts';

const run = promisify(execFile);

const PRODUCTION_OK = {
  NODE_ENV: 'production',
  ISSUER: 'https://id.example.test/',
  SMTP_HOST: 'smtp.example.test',
  TRUST_PROXY: '10.0.0.5',
  ...TEST_SECRETS,
};

/** The ConfigError loadConfig throws for this environment (fails the test when none is thrown). */
function configError(env: Record<string, string | undefined>): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

describe('loadConfig', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'latchkey-config-'));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('loads the documented development defaults, with generated secrets kept in DATA_DIR', () => {
    const config = loadConfig(withDevSecrets({ DATA_DIR: dataDir }));
    expect(config).toMatchObject({
      production: false,
      issuer: 'http://localhost:3000',
      port: 3000,
      host: '0.0.0.0',
      dataDir,
      databaseUrl: undefined,
      redisUrl: undefined,
      databasePoolMax: 10,
      logLevel: 'info',
      trustProxy: [],
      rateLimits: {
        login_ip: { points: 50, seconds: 900 },
        login_account: { points: 10, seconds: 900 },
        token_client: { points: 6000, seconds: 60 },
      },
      lockout: { threshold: 5, periodsSeconds: [60, 300, 900, 3600] },
      mfa: { policy: 'optional', requiredRoles: [], passkeyLogin: false },
      auditRetention: { days: 365, archiveDir: `${dataDir}/audit-archive`, checkSeconds: 3600 },
      admin: { email: 'admin@example.com', password: undefined },
      demoClient: { enabled: true, redirectUri: 'http://localhost:8080/callback' },
      argon2: {
        memoryCost: 19456,
        timeCost: 2,
        parallelism: 1,
        concurrency: defaultArgon2Concurrency(),
      },
      ttl: { accessToken: 600, authorizationCode: 60, refreshToken: 14 * 24 * 3600 },
      refreshReuseGraceSeconds: 5,
      keys: { alg: 'ES256', rotationDays: 90, announceSeconds: 86400, refreshSeconds: 60 },
      resourceServers: [],
      shutdownTimeoutSeconds: 10,
    });
    expect(config.sealingKey.length).toBe(32);
    expect(config.cookieKeys).toHaveLength(1);
    expect(config.cookieKeys[0]!.length).toBeGreaterThanOrEqual(32);
    // A restart reads the same secrets back, so sealed data stays readable.
    const again = loadConfig(withDevSecrets({ DATA_DIR: dataDir }));
    expect(again.sealingKey.equals(config.sealingKey)).toBe(true);
    expect(again.cookieKeys).toEqual(config.cookieKeys);
  });

  it('parses given values: numbers, booleans, trailing slash of the issuer, cookie key list', () => {
    const config = loadConfig({
      ...TEST_SECRETS,
      COOKIE_KEYS: `${'a'.repeat(32)}, ${'b'.repeat(40)}`,
      ISSUER: 'http://127.0.0.1:4000/',
      PORT: '4000',
      TRUST_PROXY: '10.0.0.0/8, loopback',
      DEMO_CLIENT: 'false',
      ADMIN_EMAIL: 'Root@Example.test',
    });
    expect(config.issuer).toBe('http://127.0.0.1:4000');
    expect(config.port).toBe(4000);
    expect(config.trustProxy).toEqual(['10.0.0.0/8', 'loopback']);
    expect(config.demoClient.enabled).toBe(false);
    expect(config.admin.email).toBe('root@example.test');
    expect(config.cookieKeys).toEqual(['a'.repeat(32), 'b'.repeat(40)]);
    expect(loadConfig({ ...TEST_SECRETS, PORT: '4100' }).issuer).toBe('http://localhost:4100');
  });

  it('refuses production without an https issuer, a sealing key, cookie keys and SMTP: one line each', () => {
    const err = configError({ NODE_ENV: 'production' });
    expect(err.problems).toEqual([
      'ISSUER: production requires an https:// issuer',
      'TRUST_PROXY: production requires the addresses of the TLS-terminating proxies in front',
      'SEALING_KEY: required, 32 random bytes in base64 (openssl rand -base64 32)',
      'SMTP_HOST: required to send email',
      'COOKIE_KEYS: required, comma-separated secrets of at least 32 characters each',
    ]);
    for (const line of err.problems) expect(err.message).toContain(`  - ${line}`);
  });

  it('names only the missing production setting when the others are given', () => {
    expect(configError({ ...PRODUCTION_OK, SEALING_KEY: undefined }).problems).toEqual([
      'SEALING_KEY: required, 32 random bytes in base64 (openssl rand -base64 32)',
    ]);
    expect(configError({ ...PRODUCTION_OK, COOKIE_KEYS: 'too-short' }).problems).toEqual([
      'COOKIE_KEYS: required, comma-separated secrets of at least 32 characters each',
    ]);
    expect(configError({ ...PRODUCTION_OK, ISSUER: 'http://id.example.test' }).problems).toEqual([
      'ISSUER: production requires an https:// issuer',
    ]);
  });

  it('refuses the outbox in production: it would write sign-in links to disk', () => {
    expect(configError({ ...PRODUCTION_OK, MAIL_TRANSPORT: 'outbox' }).problems).toEqual([
      'MAIL_TRANSPORT: production refuses outbox (it writes live sign-in links to disk); use smtp',
    ]);
    expect(
      loadConfig({ ...PRODUCTION_OK, NODE_ENV: 'test', MAIL_TRANSPORT: 'outbox' }).mail,
    ).toMatchObject({ transport: 'outbox' });
  });

  it('starts in production when all are set, and never creates the demo client there', () => {
    const config = loadConfig(PRODUCTION_OK);
    expect(config.production).toBe(true);
    expect(config.mail).toMatchObject({
      transport: 'smtp',
      smtp: { host: 'smtp.example.test', port: 587, secure: 'starttls' },
    });
    expect(config.issuer).toBe('https://id.example.test');
    expect(config.demoClient.enabled).toBe(false);
  });

  it('names a setting that is not a number, with the value it got', () => {
    const err = configError({ ...TEST_SECRETS, PORT: 'abc' });
    expect(err.problems).toHaveLength(1);
    expect(err.problems[0]).toMatch(/^PORT: .*\(got "abc"\)$/);
    expect(err.message).toContain('PORT');
  });

  it('names every bad setting at once, not only the first', () => {
    const err = configError({
      ...TEST_SECRETS,
      PORT: '70000',
      ACCESS_TOKEN_TTL: '0',
      LOG_LEVEL: 'loud',
    });
    expect(err.problems.map((p) => p.split(':')[0]).sort()).toEqual([
      'ACCESS_TOKEN_TTL',
      'LOG_LEVEL',
      'PORT',
    ]);
  });

  it('names RESOURCE_SERVERS when it is not JSON, or not a list of resource servers', () => {
    const line = 'RESOURCE_SERVERS: must be a JSON list of {"audience","scopes","format"}';
    expect(configError({ ...TEST_SECRETS, RESOURCE_SERVERS: '[{oops' }).problems).toEqual([line]);
    expect(
      configError({ ...TEST_SECRETS, RESOURCE_SERVERS: '[{"audience":"not a url"}]' }).problems,
    ).toEqual([line]);
  });

  it('parses valid RESOURCE_SERVERS with defaults for scopes and format', () => {
    const config = loadConfig({
      ...TEST_SECRETS,
      RESOURCE_SERVERS: '[{"audience":"https://api.example.test"}]',
    });
    expect(config.resourceServers).toEqual([
      { audience: 'https://api.example.test', scopes: '', format: 'jwt' },
    ]);
  });

  it('parses rate limits, lockout periods and proxies, and names bad ones', () => {
    const config = loadConfig({
      ...TEST_SECRETS,
      RATE_LIMIT_LOGIN_IP: '30/5m',
      RATE_LIMIT_TOKEN_CLIENT: 'off',
      LOCKOUT_PERIODS: '30s,2h,1d',
    });
    expect(config.rateLimits.login_ip).toEqual({ points: 30, seconds: 300 });
    expect(config.rateLimits.token_client).toBeUndefined();
    expect(config.lockout.periodsSeconds).toEqual([30, 7200, 86400]);
    const err = configError({
      ...TEST_SECRETS,
      RATE_LIMIT_LOGIN_IP: '30 per minute',
      RATE_LIMIT_REGISTER_IP: '0/1h',
      LOCKOUT_PERIODS: '1m,soon',
      TRUST_PROXY: 'true',
    });
    expect(err.problems.map((p) => p.split(':')[0]).sort()).toEqual([
      'LOCKOUT_PERIODS',
      'RATE_LIMIT_LOGIN_IP',
      'RATE_LIMIT_REGISTER_IP',
      'TRUST_PROXY',
    ]);
    expect(err.message).toContain('a limit like 30/5m (count/duration) or off');
  });

  it('returns a frozen config: no code can change a setting after start', () => {
    const config = loadConfig({ ...TEST_SECRETS });
    expect(Object.isFrozen(config)).toBe(true);
    expect(() => {
      (config as { port: number }).port = 1;
    }).toThrow(TypeError);
    expect(config.port).toBe(3000);
  });

  it('takes ARGON2_CONCURRENCY as the number of hashes computed at once', () => {
    expect(loadConfig({ ...TEST_SECRETS, ARGON2_CONCURRENCY: '3' }).argon2.concurrency).toBe(3);
    expect(configError({ ...TEST_SECRETS, ARGON2_CONCURRENCY: '-1' }).message).toMatch(
      /ARGON2_CONCURRENCY/,
    );
  });
});

describe('WORKERS', () => {
  const SCALE_OUT = {
    ...PRODUCTION_OK,
    DATABASE_URL: 'postgres://db.example.test/latchkey',
    REDIS_URL: 'redis://redis.example.test',
  };

  it('is one process per CPU core in production on PostgreSQL + Redis, else one', () => {
    expect(loadConfig(SCALE_OUT).workers).toBe(availableParallelism());
    expect(loadConfig({ ...SCALE_OUT, REDIS_URL: '' }).workers).toBe(1);
    expect(loadConfig({ ...SCALE_OUT, NODE_ENV: 'development' }).workers).toBe(1);
    expect(loadConfig({ ...TEST_SECRETS }).workers).toBe(1);
    expect(loadConfig({ ...SCALE_OUT, WORKERS: '3' }).workers).toBe(3);
  });

  it('refuses more than one with the embedded database: one process owns DATA_DIR', () => {
    const err = configError({ ...TEST_SECRETS, WORKERS: '2' });
    expect(err.problems).toEqual([
      'WORKERS: the embedded database (no DATABASE_URL) is opened by one process only; set WORKERS=1, or DATABASE_URL',
    ]);
    expect(loadConfig({ ...TEST_SECRETS, WORKERS: '1' }).workers).toBe(1);
  });

  it('shares the pools among the workers, so the process tree uses what one process would', () => {
    const shared = loadConfig({
      ...SCALE_OUT,
      WORKERS: '4',
      DATABASE_POOL_MAX: '20',
      ARGON2_CONCURRENCY: '8',
      PASSWORD_CHECK_THREADS: '2',
    });
    expect(shared.databasePoolMax).toBe(5);
    expect(shared.argon2.concurrency).toBe(2);
    // Each worker keeps at least what it needs to work: two connections, one thread.
    expect(shared.passwordCheck.threads).toBe(1);
    expect(
      loadConfig({ ...SCALE_OUT, WORKERS: '8', DATABASE_POOL_MAX: '10' }).databasePoolMax,
    ).toBe(2);
    const one = loadConfig({ ...SCALE_OUT, WORKERS: '1', DATABASE_POOL_MAX: '1' });
    expect(one.databasePoolMax).toBe(1);
  });
});

describe('thread pool', () => {
  // Starts libuv's pool (a file read) and counts its threads.
  const poolThreads = async (env: Record<string, string>) => {
    const script = [
      "await import('./server/thread-pool.ts');",
      "const { readFile, readdir } = await import('node:fs/promises');",
      "await readFile('package.json');",
      "const tasks = await readdir('/proc/self/task');",
      "const names = await Promise.all(tasks.map((t) => readFile(`/proc/self/task/${t}/comm`, 'utf8')));",
      "console.log(names.filter((n) => n.trim() === 'libuv-worker').length);",
    ].join('\n');
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
      env: { PATH: process.env.PATH ?? '', ...env },
    });
    return Number(stdout.trim());
  };

  it('has one thread per CPU core unless UV_THREADPOOL_SIZE is set', async () => {
    expect(await poolThreads({})).toBe(availableParallelism());
    expect(await poolThreads({ UV_THREADPOOL_SIZE: '7' })).toBe(7);
  });
});
