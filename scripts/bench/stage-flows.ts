// Authorization code + PKCE flows on every server: a password login in a new browser, then code
// flows in a browser already signed in; each worker count measured on each server in turn, the
// order rotated from one to the next. Then, on Latchkey, /healthz while people register.
import { Browser } from './http-client.ts';
import {
  passwordLoginFlow,
  runJobs,
  sessionFlow,
  type Measurement,
  type RelyingParty,
} from './load.ts';
import { withPgActivity } from './pg-activity.ts';
import {
  EXISTING_SESSION,
  FLOW_WARMUP,
  FLOW_WORKERS,
  PASSWORD_FLOWS,
  PASSWORD_LOGIN,
  REGISTRATION_WORKERS,
  REGISTRATIONS,
  SESSION_FLOWS,
  type Results,
} from './plan.ts';
import { fmt } from './format.ts';
import { healthzUnderRegistrations } from './responsiveness.ts';
import { rotated, type Note, type Server } from './servers.ts';

export async function benchFlows(servers: Server[], results: Results, note: Note): Promise<void> {
  const rp = (server: Server): RelyingParty => ({ issuer: server.url, client: server.web });
  const record = (server: Server, name: string, measurement: Measurement) => {
    server.assertAlive();
    results.flows.push({ server: server.name, name, round: 0, measurement });
    note(
      `${server.name} ${name}, ${measurement.concurrency} workers: ${fmt(measurement.perSecond, 1)}/s`,
    );
    return measurement.count;
  };
  const freshBrowser = (server: Server) => async () => () => passwordLoginFlow(rp(server));
  const signedIn = (server: Server) => async () => {
    const browser = new Browser();
    await passwordLoginFlow(rp(server), browser);
    return () => sessionFlow(rp(server), browser);
  };

  await withPgActivity(servers, PASSWORD_LOGIN, 'flow', results, async (onPostgres) => {
    let onPostgresCount = 0;
    for (const server of servers) {
      const { count } = await runJobs(FLOW_WARMUP, 4, freshBrowser(server));
      if (server === onPostgres) onPostgresCount += count;
    }
    for (const [turn, workers] of FLOW_WORKERS.entries())
      for (const server of rotated(servers, turn)) {
        const measured = await runJobs(PASSWORD_FLOWS, workers, freshBrowser(server), server.cpuMs);
        const count = record(server, PASSWORD_LOGIN, measured);
        if (server === onPostgres) onPostgresCount += count;
      }
    return onPostgresCount;
  });
  await withPgActivity(servers, EXISTING_SESSION, 'flow', results, async (onPostgres) => {
    // Each worker's sign-in is a password-login flow too.
    let onPostgresCount = FLOW_WORKERS.reduce((sum, workers) => sum + workers, 0);
    for (const [turn, workers] of FLOW_WORKERS.entries())
      for (const server of rotated(servers, turn)) {
        const measured = await runJobs(SESSION_FLOWS, workers, signedIn(server), server.cpuMs);
        const count = record(server, EXISTING_SESSION, measured);
        if (server === onPostgres) onPostgresCount += count;
      }
    return onPostgresCount;
  });
}

/** /healthz latency on Latchkey, idle and while REGISTRATION_WORKERS registrations run at once. */
export async function benchResponsiveness(
  servers: Server[],
  results: Results,
  note: Note,
): Promise<void> {
  for (const server of servers) {
    if (!server.storage) continue;
    const rp = { issuer: server.url, client: server.web };
    const measured = await healthzUnderRegistrations(
      rp,
      REGISTRATIONS,
      REGISTRATION_WORKERS,
      server.cpuMs,
    );
    results.responsiveness.push({ storage: server.storage, ...measured });
    note(
      `${server.name} /healthz p99 ${fmt(measured.idle.p99Ms, 1)} ms idle, ${fmt(measured.loaded.p99Ms, 1)} ms under ${REGISTRATION_WORKERS} registrations at once`,
    );
    server.assertAlive();
  }
}
