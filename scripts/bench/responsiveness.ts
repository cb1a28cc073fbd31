// Whether the server stays responsive while people register: /healthz is probed one request at
// a time, first idle, then while registration workers run. A registration costs an argon2 hash
// (on libuv's threads) and a zxcvbn estimate (on the strength pool's worker threads); neither
// may hold up the event loop, so /healthz should answer about as fast as when idle.
import { randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { formAction, hiddenInput } from '../../test/support/browser.ts';
import { Browser, request } from './http-client.ts';
import { runJobs, type CpuClock, type Measurement, type RelyingParty } from './load.ts';
import { REDIRECT_URI } from './target.ts';

export type Latencies = { count: number; p50Ms: number; p99Ms: number };

export type Responsiveness = {
  /** The registrations run meanwhile. */
  registrations: Measurement;
  idle: Latencies;
  loaded: Latencies;
};

/** Time between two /healthz probes: often enough to see a stall, rare enough to cost nothing. */
export const PROBE_INTERVAL_MS = 10;
const IDLE_PROBES = 200;

/**
 * Sign-in page → "Create an account" → POST /register with a new address and a password like a
 * password manager's (24 random characters: zxcvbn's cost grows with the length it must try).
 */
export async function registrationFlow(rp: RelyingParty): Promise<void> {
  const browser = new Browser();
  const auth = new URL('/auth', rp.issuer);
  auth.search = new URLSearchParams({
    client_id: rp.client.id,
    response_type: 'code',
    redirect_uri: REDIRECT_URI,
    scope: 'openid email',
    code_challenge: randomBytes(32).toString('base64url'),
    code_challenge_method: 'S256',
  }).toString();
  const login = await browser.follow(await browser.send(auth), rp.issuer);
  const register = /href="([^"]*\/register)"/.exec(login.body)?.[1];
  if (!register) throw new Error(`no "Create an account" link on the ${login.status} sign-in page`);
  const form = await browser.send(new URL(register, rp.issuer));
  const password = randomBytes(18).toString('base64url');
  const res = await browser.post(new URL(formAction(form.body, '/register'), rp.issuer), {
    csrf: hiddenInput(form.body, 'csrf'),
    email: `bench-${randomUUID()}@example.test`,
    name: 'Bench Registrant',
    password,
    confirm: password,
  });
  if (res.status !== 200 || !res.body.includes('Check your email'))
    throw new Error(`registration answered ${res.status}`);
}

/** /healthz latencies of probes sent one after another until `until` settles. */
async function probe(issuer: string, until: Promise<unknown> | number): Promise<Latencies> {
  const url = new URL('/healthz', issuer);
  const latencies: number[] = [];
  let done = false;
  if (typeof until !== 'number') void until.finally(() => (done = true));
  while (typeof until === 'number' ? latencies.length < until : !done) {
    const t0 = performance.now();
    const res = await request(url);
    if (res.status !== 200) throw new Error(`/healthz answered ${res.status}`);
    latencies.push(performance.now() - t0);
    await sleep(PROBE_INTERVAL_MS);
  }
  latencies.sort((a, b) => a - b);
  const at = (q: number) =>
    latencies[Math.min(latencies.length - 1, Math.ceil(q * latencies.length) - 1)] ?? 0;
  return { count: latencies.length, p50Ms: at(0.5), p99Ms: at(0.99) };
}

/** /healthz idle, then while `workers` registrations at a time make `count` accounts. */
export async function healthzUnderRegistrations(
  rp: RelyingParty,
  count: number,
  workers: number,
  serverCpu?: CpuClock,
): Promise<Responsiveness> {
  const idle = await probe(rp.issuer, IDLE_PROBES);
  const running = runJobs(count, workers, async () => () => registrationFlow(rp), serverCpu);
  const loaded = await probe(rp.issuer, running);
  return { registrations: await running, idle, loaded };
}
