// Load generation: autocannon for single endpoints, small worker loops for browser flows and
// argon2. Every measurement counts its failures: a benchmark of error responses is worthless.
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import argon2 from 'argon2';
import { formAction, hiddenInput } from '../../test/support/browser.ts';
import { Browser, request, type Page } from './http-client.ts';
import { CLOCK_TICK_MS } from './process.ts';
import { REDIRECT_URI, USER, type Client } from './target.ts';

export type Measurement = {
  concurrency: number;
  count: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** Non-2xx responses, unexpected bodies, socket errors and timeouts; or failed flows. */
  failed: number;
  firstFailure?: string | undefined;
  /** CPU milliseconds (user + system, all threads) per request or flow, of this process… */
  benchCpuMs: number;
  /** …and of the server, when its CPU clock was given… */
  serverCpuMs?: number | undefined;
  /** …and of the whole machine (every process and the kernel), where /proc/stat is readable. */
  machineCpuMs?: number | undefined;
};

/** CPU milliseconds a process has used so far. */
export type CpuClock = () => number;

function benchCpu(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/** Busy CPU milliseconds of the whole machine so far (all cores), or undefined off Linux. */
function machineCpu(): number | undefined {
  try {
    const times = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.split(/\s+/).slice(1);
    // user nice system idle iowait irq softirq steal: all but idle and iowait are busy.
    const [user, nice, system, , , irq, softirq, steal] = times.map(Number);
    return (user! + nice! + system! + irq! + softirq! + steal!) * CLOCK_TICK_MS;
  } catch {
    return undefined;
  }
}

/** Starts counting CPU; the returned function gives the CPU per operation since. */
function cpuMeter(serverCpu: CpuClock | undefined) {
  const bench = benchCpu();
  const server = serverCpu?.() ?? 0;
  const machine = machineCpu();
  return (count: number) => {
    const machineNow = machineCpu();
    return {
      benchCpuMs: (benchCpu() - bench) / count,
      serverCpuMs: serverCpu ? (serverCpu() - server) / count : undefined,
      machineCpuMs:
        machine !== undefined && machineNow !== undefined
          ? (machineNow - machine) / count
          : undefined,
    };
  };
}

// autocannon ships no type declarations; this is the part used here.
type AutocannonResult = { errors: number; non2xx: number; mismatches: number };
type Autocannon = (
  options: {
    url: string;
    method: 'POST';
    headers: Record<string, string>;
    body: string;
    connections: number;
    amount: number;
    verifyBody: (body: string) => boolean;
  },
  done: (err: Error | null, result: AutocannonResult) => void,
) => EventEmitter;
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

/** A POST endpoint and how to tell a good answer from a bad one. */
export type Endpoint = {
  url: string;
  headers: Record<string, string>;
  body: string;
  verify(body: string): boolean;
};

export function basicAuth(client: Client): string {
  const pair = `${encodeURIComponent(client.id)}:${encodeURIComponent(client.secret)}`;
  return `Basic ${Buffer.from(pair).toString('base64')}`;
}

const accessToken = (body: string) => (JSON.parse(body) as { access_token?: string }).access_token;

/** client_credentials for an opaque access token: the hot path of a service-to-service API. */
export function opaqueClientCredentials(url: string, client: Client): Endpoint {
  return {
    url: `${url}/token`,
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: basicAuth(client),
    },
    body: 'grant_type=client_credentials',
    verify: (body) => accessToken(body)?.split('.').length === 1,
  };
}

/** Sends `amount` requests over `connections` keep-alive connections. */
export function hammer(
  endpoint: Endpoint,
  connections: number,
  amount: number,
  serverCpu?: CpuClock,
) {
  return new Promise<Measurement>((resolve, reject) => {
    const cpu = cpuMeter(serverCpu);
    let firstFailure: string | undefined;
    const latencies: number[] = [];
    let lastResponseAt = 0;
    const started = performance.now();
    const verifyBody = (body: string) => {
      const ok = endpoint.verify(body);
      if (!ok) firstFailure ??= body.slice(0, 300);
      return ok;
    };
    const { url, headers, body } = endpoint;
    const options = { url, method: 'POST' as const, headers, body, connections, amount };
    const instance = autocannon({ ...options, verifyBody }, (err, result) => {
      if (err) return reject(err);
      // Timed from the responses: autocannon's own duration runs on to its next 1 s sample,
      // and its latency histogram keeps whole milliseconds only.
      latencies.sort((a, b) => a - b);
      resolve({
        concurrency: connections,
        count: latencies.length,
        perSecond: latencies.length / ((lastResponseAt - started) / 1000),
        p50Ms: percentile(latencies, 0.5),
        p99Ms: percentile(latencies, 0.99),
        failed: result.errors + Math.max(result.non2xx, result.mismatches),
        firstFailure:
          firstFailure ?? (result.errors ? `${result.errors} socket errors` : undefined),
        ...cpu(latencies.length),
      });
    });
    instance.on('response', (_client: unknown, _status: number, _bytes: number, ms: number) => {
      latencies.push(ms);
      lastResponseAt = performance.now();
    });
  });
}

type Job = () => Promise<void>;

/**
 * Runs `count` jobs on `concurrency` workers. Each worker first gets its job from `prepare`
 * (untimed: e.g. signing in once); then the clock starts.
 */
export async function runJobs(
  count: number,
  concurrency: number,
  prepare: () => Promise<Job>,
  serverCpu?: CpuClock,
): Promise<Measurement> {
  const jobs = await Promise.all(Array.from({ length: concurrency }, prepare));
  const cpu = cpuMeter(serverCpu);
  const latencies: number[] = [];
  let next = 0;
  let failed = 0;
  let firstFailure: string | undefined;
  const started = performance.now();
  await Promise.all(
    jobs.map(async (job) => {
      while (next++ < count) {
        const t0 = performance.now();
        try {
          await job();
          latencies.push(performance.now() - t0);
        } catch (err) {
          failed++;
          firstFailure ??= (err as Error).message;
        }
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    concurrency,
    count,
    perSecond: count / seconds,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    failed,
    firstFailure,
    ...cpu(count),
  };
}

function percentile(sorted: number[], q: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]! : 0;
}

/** A relying party: the web client of the server at `issuer`. */
export type RelyingParty = { issuer: string; client: Client };

/**
 * GET /auth → login page → POST login → code → POST /token, in a new browser each time. The
 * consent page comes only the first time: consent is remembered per user and client.
 */
export async function passwordLoginFlow(rp: RelyingParty, browser = new Browser()): Promise<void> {
  const { url, verifier } = authorizationRequest(rp);
  let step = await browser.follow(await browser.send(url), rp.issuer);
  step = await submitForm(browser, rp.issuer, step, '/login', {
    email: USER.email,
    password: USER.password,
  });
  if (step.url.pathname.startsWith('/interaction/'))
    step = await submitForm(browser, rp.issuer, step, '/consent', {});
  await redeemCode(rp, step.url, verifier);
}

/** In a browser already signed in (and consented): GET /auth → code → POST /token. */
export async function sessionFlow(rp: RelyingParty, browser: Browser): Promise<void> {
  const { url, verifier } = authorizationRequest(rp);
  const step = await browser.follow(await browser.send(url), rp.issuer);
  await redeemCode(rp, step.url, verifier);
}

function authorizationRequest(rp: RelyingParty) {
  const verifier = randomBytes(32).toString('base64url');
  const url = new URL('/auth', rp.issuer);
  url.search = new URLSearchParams({
    client_id: rp.client.id,
    response_type: 'code',
    redirect_uri: REDIRECT_URI,
    scope: 'openid profile email',
    state: randomBytes(12).toString('base64url'),
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
  }).toString();
  return { url, verifier };
}

/** Submits the interaction page's form that posts to `action`, and follows where it leads. */
async function submitForm(
  browser: Browser,
  issuer: string,
  step: Page,
  action: '/login' | '/consent',
  fields: Record<string, string>,
): Promise<Page> {
  const html = step.body;
  if (!step.url.pathname.startsWith('/interaction/') || !html.includes(`${action}"`))
    throw new Error(`expected the ${action} page, got ${step.status} at ${step.url.pathname}`);
  const target = new URL(formAction(html, action), issuer);
  const res = await browser.post(target, { csrf: hiddenInput(html, 'csrf'), ...fields });
  return browser.follow(res, issuer);
}

async function redeemCode(rp: RelyingParty, landedAt: URL, verifier: string): Promise<void> {
  const code = landedAt.searchParams.get('code');
  if (!landedAt.href.startsWith(REDIRECT_URI) || !code)
    throw new Error(`expected a code at the redirect URI, got ${landedAt.pathname}`);
  const res = await request(new URL('/token', rp.issuer), {
    method: 'POST',
    headers: {
      authorization: basicAuth(rp.client),
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      redirect_uri: REDIRECT_URI,
      code_verifier: verifier,
    }).toString(),
  });
  const tokens = JSON.parse(res.body) as { id_token?: string; error?: string };
  if (res.status !== 200 || !tokens.id_token)
    throw new Error(`token endpoint answered ${res.status} ${tokens.error ?? ''}`);
}

export type Argon2Params = { memoryCost: number; timeCost: number; parallelism: number };

/** argon2id verifies in this process (libuv threadpool), like the server's login. */
export async function argon2Verifies(count: number, concurrency: number, params: Argon2Params) {
  const options = { type: argon2.argon2id as 2, ...params };
  const hash = await argon2.hash(USER.password, options);
  return runJobs(count, concurrency, async () => async () => {
    if (!(await argon2.verify(hash, USER.password))) throw new Error('argon2 verify failed');
  });
}
