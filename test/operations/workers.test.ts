import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../config/load.ts';
import { closeDb, openDb } from '../../server/db.ts';
import { createLogger } from '../../server/log.ts';
import { createServices } from '../../server/services.ts';
import { Browser } from '../support/browser.ts';
import { startChildServer, type ChildServer } from '../support/child-server.ts';
import { freshPostgresUrl, freshRedisUrl } from '../support/databases.ts';
import { REDIRECT_URI, relyingParty, signIn } from '../support/relying-party.ts';
import { freePort } from '../support/services.ts';
import { TEST_SECRETS } from '../support/server.ts';

const USER = { email: 'wanda.workers@example.test', password: 'a long enough password 7' };

/** The processes the server's primary has forked, as the kernel lists them. */
function workerPids(primary: number): number[] {
  try {
    const text = readFileSync(`/proc/${primary}/task/${primary}/children`, 'utf8');
    return text.split(' ').filter(Boolean).map(Number).sort();
  } catch {
    return [];
  }
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function until<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 20_000,
) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * fetch on a new connection each time, with a request id the server logs: the primary hands
 * connections to its workers in turn, so successive requests go to different workers.
 */
const oneShot =
  (prefix: string): typeof fetch =>
  (url, init = {}) => {
    const headers = new Headers(init.headers);
    headers.set('connection', 'close');
    headers.set('x-request-id', `${prefix}-${crypto.randomUUID()}`);
    return fetch(url, { ...init, headers });
  };

describe('WORKERS=2 on PostgreSQL + Redis', () => {
  let server: ChildServer;
  let env: Record<string, string>;
  let metricsUrl: string;
  let client: { clientId: string; clientSecret: string };

  /** The pids that logged requests whose id starts with `prefix`. */
  const servedBy = (prefix: string) => {
    const pids = new Set<number>();
    for (const line of server.output().split('\n')) {
      if (!line.includes(`"requestId":"${prefix}-`)) continue;
      const entry = JSON.parse(line) as { pid?: number; msg?: string };
      if (entry.msg === 'request') pids.add(entry.pid!);
    }
    return [...pids].sort();
  };

  /** One series' value from a scrape of METRICS_PORT (0 when it has none yet). */
  const scraped = async (series: string) => {
    const text = await (await fetch(metricsUrl)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    return line ? Number(line.slice(series.length + 1)) : 0;
  };
  const HEALTHZ_COUNT =
    'latchkey_http_request_duration_seconds_count{route="/healthz",status_class="2xx"}';

  beforeAll(async () => {
    const port = await freePort();
    let metricsPort = await freePort();
    while (metricsPort === port) metricsPort = await freePort();
    metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
    env = {
      DATABASE_URL: await freshPostgresUrl(),
      REDIS_URL: await freshRedisUrl(),
      DATA_DIR: mkdtempSync(join(tmpdir(), 'latchkey-workers-')),
      WORKERS: '2',
      METRICS_PORT: String(metricsPort),
      METRICS_HOST: '127.0.0.1',
      // Every request is logged, with the pid of the worker that answered it.
      LOG_LEVEL: 'debug',
    };
    server = await startChildServer(env, port);
    // The first worker serves first (it migrates); the banner follows once both do.
    await until('both workers', () => (server.output().includes('Latchkey is up') ? 1 : undefined));
    const config = loadConfig({ ...TEST_SECRETS, ...env, LOG_LEVEL: 'silent' });
    const db = await openDb({ databaseUrl: env.DATABASE_URL, dataDir: env.DATA_DIR!, poolMax: 2 });
    const services = createServices({ config, db, log: createLogger('silent') });
    try {
      await services.users.create({ ...USER, emailVerified: true });
      const created = await services.clients.create({
        name: 'Workers app',
        redirectUris: [REDIRECT_URI],
        grantTypes: ['authorization_code', 'refresh_token', 'client_credentials'],
      });
      client = { clientId: created.clientId, clientSecret: created.clientSecret! };
    } finally {
      await services.close();
      await closeDb(db);
    }
  });
  afterAll(async () => {
    await server?.stop('SIGKILL');
    rmSync(env.DATA_DIR!, { recursive: true, force: true });
  });

  it('answers from two worker processes, not from the primary', async () => {
    const transport = oneShot('spread');
    for (let i = 0; i < 6; i++) expect((await transport(`${server.url}/healthz`)).status).toBe(200);
    const workers = workerPids(server.child.pid!);
    expect(servedBy('spread')).toEqual(workers);
    expect(workers).not.toContain(server.child.pid);
    // The start-up banner, with the first admin's line, is printed once, by the primary.
    expect(server.output().match(/Latchkey is up/g)).toHaveLength(1);
    expect(server.output().match(/admin login created/g)).toHaveLength(1);
  });

  it('signs in, refreshes and introspects with each request going to either worker', async () => {
    const transport = oneShot('flow');
    const rp = await relyingParty(server.url, client.clientId, client.clientSecret, transport);
    const browser = new Browser({ transport });
    const tokens = await signIn(rp, browser, server.url, USER);
    const refreshed = await oidc.refreshTokenGrant(rp, tokens.refresh_token!);
    expect(refreshed.access_token).toBeTruthy();
    const service = await oidc.clientCredentialsGrant(rp);
    for (const token of [refreshed.access_token, service.access_token]) {
      const answer = await oidc.tokenIntrospection(rp, token);
      expect(answer.active).toBe(true);
    }
    expect(servedBy('flow')).toEqual(workerPids(server.child.pid!));
  });

  it('gives the figures of both workers in one scrape of METRICS_PORT', async () => {
    const before = await scraped(HEALTHZ_COUNT);
    const transport = oneShot('counted');
    for (let i = 0; i < 10; i++) await transport(`${server.url}/healthz`);
    expect(servedBy('counted')).toHaveLength(2);
    // Counters are summed over the workers: each answered about half.
    expect((await scraped(HEALTHZ_COUNT)) - before).toBe(10);
    // Gauges of shared state are not: both workers see the same three active keys, both ready.
    expect(await scraped('latchkey_signing_keys{state="active"}')).toBe(3);
    expect(await scraped('latchkey_readiness_check_up{check="all"}')).toBe(1);
    expect(await scraped('latchkey_db_pool_connections{state="free"}')).toBeGreaterThan(0);
  });

  it('replaces a worker that dies, keeping the counts it had made', async () => {
    const [victim, survivor] = workerPids(server.child.pid!);
    const counted = await scraped(HEALTHZ_COUNT);
    process.kill(victim!, 'SIGKILL');
    const replaced = await until('a new worker', () => {
      const pids = workerPids(server.child.pid!);
      return pids.length === 2 && !pids.includes(victim!) ? pids : undefined;
    });
    expect(replaced).toContain(survivor);
    expect(server.output()).toMatch(/"msg":"worker exited unexpectedly/);
    // The new worker takes requests once it listens (/readyz: /healthz's count is checked below).
    const transport = oneShot('after');
    await until('the new worker answering', async () => {
      await transport(`${server.url}/readyz`);
      return servedBy('after').length === 2 ? true : undefined;
    });
    expect(servedBy('after')).toEqual(replaced);
    expect(await scraped(HEALTHZ_COUNT)).toBeGreaterThanOrEqual(counted);
  });

  it('stops every worker, gracefully, on SIGTERM to the primary', async () => {
    const workers = workerPids(server.child.pid!);
    expect(workers).toHaveLength(2);
    expect(await server.stop('SIGTERM')).toBe(0);
    for (const pid of workers) expect(alive(pid)).toBe(false);
    const errors = server
      .output()
      .split('\n')
      .filter((l) => /"level":[56]0/.test(l) && !l.includes('worker exited unexpectedly'));
    expect(errors).toEqual([]);
  });
});
