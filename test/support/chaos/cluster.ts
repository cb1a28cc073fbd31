// The system the chaos suite breaks: two Latchkey processes (children run from source) behind
// one issuer, on a PostgreSQL and a Redis (appendonly) of their own, with a slapd directory and
// an SMTP server in this process; the users and clients the load needs. Requests reach a process
// as through a load balancer: round robin over the processes in rotation.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as oidc from 'openid-client';
import { defaults } from '../../../config/defaults.ts';
import { createClientStore } from '../../../server/clients/store.ts';
import { closeDb, openDb, type Db } from '../../../server/db.ts';
import { createPasswordHasher } from '../../../server/security/passwords.ts';
import { createUserStore } from '../../../server/users/store.ts';
import { startChildServer, type ChildServer } from '../child-server.ts';
import { smtpEnv } from '../mailbox.ts';
import { REDIRECT_URI, relyingParty } from '../relying-party.ts';
import { TEST_SECRETS } from '../server.ts';
import { freePort, startPostgres, startRedis, type RestartableService } from '../services.ts';
import { SEEDED, startSlapd, type Slapd } from '../slapd.ts';
import { startSmtpServer, type TestSmtpServer } from '../smtp.ts';
import { createRecorder, type Recorder } from './recorder.ts';

/** The issuer every process serves; the recorder's transport swaps it for a process's address. */
export const ISSUER = 'http://latchkey.chaos.test';

export type Credentials = { email: string; password: string };

export type Backend = {
  name: string;
  port: number;
  dataDir: string;
  server: ChildServer | undefined;
  /** In the load balancer's rotation. */
  routed: boolean;
};

/** A SIGTERMed process has this long to finish before it is killed (its own limit is 10 s). */
const STOP_GRACE_MS = 20_000;

// Every request comes from 127.0.0.1 here, where production has many addresses: the per-IP
// limits would count all of the load as one sender. The per-account ones stay as they are.
const CHILD_SETTINGS = {
  LOG_LEVEL: 'warn',
  RATE_LIMIT_LOGIN_IP: '1000000/1m',
  LOGIN_IN_FLIGHT_IP: '64',
  RATE_LIMIT_RESET_IP: '1000000/1m',
  RATE_LIMIT_RESET_ACCOUNT: '1000000/1m',
  EMAIL_RESEND_SECONDS: '0',
};

async function createAccounts(databaseUrl: string) {
  const db = await openDb({ databaseUrl, dataDir: '/nonexistent', poolMax: 2 });
  const passwords = createPasswordHasher({
    memoryCost: defaults.ARGON2_MEMORY_KIB,
    timeCost: defaults.ARGON2_TIME_COST,
    parallelism: defaults.ARGON2_PARALLELISM,
    concurrency: 1,
  });
  const users = createUserStore(db, passwords);
  const local = ['ada', 'grace', 'edsger'].map((name) => ({
    email: `${name}@chaos.test`,
    password: `${name}-chaos-password-0123`,
  }));
  const mail = { email: 'mail@chaos.test', password: 'mail-chaos-password-0123' };
  for (const user of [...local, mail]) await users.create({ ...user, emailVerified: true });
  const clients = createClientStore(db, Buffer.from(TEST_SECRETS.SEALING_KEY, 'base64'), 0);
  const web = await clients.create({ name: 'Chaos web', redirectUris: [REDIRECT_URI] });
  const service = await clients.create({
    name: 'Chaos service',
    redirectUris: [],
    grantTypes: ['client_credentials'],
  });
  await closeDb(db);
  return { local, mail: mail.email, web, service };
}

export async function startCluster() {
  const stack: Array<() => unknown> = [];
  const backends: Backend[] = [];
  const crashes: string[] = [];
  const finished: string[] = [];
  let turn = 0;
  const pick = () => {
    const live = backends.filter((b) => b.routed && b.server?.child.exitCode === null);
    const chosen = live[turn++ % Math.max(live.length, 1)] ?? backends[0]!;
    return { name: chosen.name, url: `http://127.0.0.1:${chosen.port}` };
  };
  const recorder: Recorder = createRecorder(pick);

  async function close() {
    for (let step = stack.pop(); step; step = stack.pop())
      await Promise.resolve()
        .then(step)
        .catch((err) => console.error('chaos: cleanup step failed:', err));
  }

  try {
    const [postgres, redis, slapd, smtp] = await Promise.all([
      startPostgres(),
      startRedis({ appendonly: true }),
      startSlapd(),
      startSmtpServer(),
    ]);
    stack.push(
      () => postgres.stop(),
      () => redis.stop(),
      () => slapd.cleanup(),
    );
    stack.push(() => smtp.stop());
    const env = {
      ...CHILD_SETTINGS,
      ...slapd.env(),
      ...smtpEnv(smtp),
      DATABASE_URL: postgres.url,
      REDIS_URL: redis.url,
      ISSUER,
    };

    async function start(backend: Backend) {
      const server = await startChildServer({ ...env, DATA_DIR: backend.dataDir }, backend.port);
      backend.server = server;
      backend.routed = true;
      server.child.once('exit', (code, signal) => {
        finished.push(server.output());
        if (!stopping.has(server)) crashes.push(`${backend.name} exited (${code ?? signal})`);
      });
    }
    const stopping = new Set<ChildServer>();
    /** SIGTERM (SIGKILL after the grace); resolves with the exit code. */
    async function stop(backend: Backend, signal: NodeJS.Signals = 'SIGTERM') {
      const server = backend.server;
      if (!server) return null;
      stopping.add(server);
      const killer = setTimeout(() => server.child.kill('SIGKILL'), STOP_GRACE_MS);
      const code = await server.stop(signal);
      clearTimeout(killer);
      return code;
    }
    stack.push(() => Promise.all(backends.map((b) => stop(b))));
    for (const name of ['a', 'b']) {
      const dataDir = mkdtempSync(join(tmpdir(), `latchkey-chaos-${name}-`));
      stack.push(() => rmSync(dataDir, { recursive: true, force: true }));
      backends.push({ name, port: await freePort(), dataDir, server: undefined, routed: false });
    }
    // The first one migrates the database the accounts go into.
    await start(backends[0]!);
    const accounts = await createAccounts(postgres.url);
    await start(backends[1]!);

    const rp = (client: { clientId: string; clientSecret?: string | undefined }) =>
      relyingParty(ISSUER, client.clientId, client.clientSecret, recorder.transport);
    const [web, service] = await Promise.all([rp(accounts.web), rp(accounts.service)]);
    const directory = [SEEDED.alice, SEEDED.bob, SEEDED.dave].map(({ email, password }) => ({
      email,
      password,
    }));

    return {
      recorder,
      postgres: postgres as RestartableService,
      redis: redis as RestartableService,
      slapd: slapd as Slapd,
      smtp: smtp as TestSmtpServer,
      /** A connection to the database, for a look at what the processes wrote; closed after. */
      async query<T>(work: (db: Db) => Promise<T>): Promise<T> {
        const db = await openDb({ databaseUrl: postgres.url, dataDir: '/nonexistent', poolMax: 1 });
        try {
          return await work(db);
        } finally {
          await closeDb(db);
        }
      },
      web: web as oidc.Configuration,
      service: service as oidc.Configuration,
      users: { local: accounts.local, directory, mail: accounts.mail },
      backends,
      start,
      stop,
      /** Starts again any process that is not running (a crash in an earlier fault). */
      async ensureUp() {
        for (const b of backends) if (b.server?.child.exitCode !== null) await start(b);
      },
      /** Everything every process printed so far, the ones that have exited included. */
      output: () =>
        [
          ...finished,
          ...backends.map((b) => (b.server?.child.exitCode === null ? b.server.output() : '')),
        ].join('\n'),
      crashes,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

export type Cluster = Awaited<ReturnType<typeof startCluster>>;
