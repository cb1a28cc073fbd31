// The faults, one at a time, and how long each lasts: `full` is `npm run chaos`, `short` the
// form that runs in `npm test`.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Cluster } from './cluster.ts';
import type { Kind } from './load.ts';

export type Form = 'short' | 'full';

export type Timing = {
  /** Signed-in browsers (each with a refresh token) held from before the fault. */
  held: number;
  /** Load before the fault starts. */
  baselineMs: number;
  /** After recovery, how long every kind must keep succeeding before the phase ends. */
  stableMs: number;
  /** Longest wait for recovery after the fault ends. */
  recoveryMs: number;
  /** Longest wait, after recovery, for the mails that were promised. */
  mailWaitMs: number;
};

export const TIMINGS: Record<Form, Timing> = {
  short: { held: 4, baselineMs: 1000, stableMs: 2000, recoveryMs: 20_000, mailWaitMs: 15_000 },
  full: { held: 6, baselineMs: 3000, stableMs: 5000, recoveryMs: 60_000, mailWaitMs: 60_000 },
};

export type Fault = {
  name: string;
  /** The kinds of load that may fail while it lasts (answered 503); the others must not fail. */
  affects: readonly Kind[] | 'all';
  /** How long the dependency stays down. */
  downMs: number;
  inject(c: Cluster): Promise<void>;
  restore(c: Cluster): Promise<void>;
  /** Anything wrong the fault itself saw (a non-zero exit code): a problem. */
  notes?: string[];
  /** What it saw that is worth telling (the requests in flight at SIGTERM). */
  info?: string[];
};

export function faults(form: Form): Fault[] {
  const down = (full: number, short: number) => (form === 'full' ? full : short);
  // What the SMTP and SIGTERM faults saw, each its own.
  const smtp = { notes: [] as string[], info: [] as string[], refusedBefore: 0 };
  const sigterm = { notes: [] as string[], info: [] as string[] };
  return [
    {
      name: 'Redis killed (SIGKILL), restarted',
      affects: 'all',
      // Longer than the answer bound even in the short form, so that a request held until
      // Redis is back shows as too slow.
      downMs: down(10_000, 6000),
      inject: (c) => c.redis.down(),
      restore: (c) => c.redis.up(),
    },
    {
      name: 'PostgreSQL stopped (fast: connections cut), restarted',
      affects: 'all',
      downMs: 6000,
      inject: (c) => c.postgres.down(),
      restore: (c) => c.postgres.up(),
    },
    {
      name: 'directory (slapd) stopped, started',
      affects: ['directory sign-in'],
      downMs: down(10_000, 3000),
      inject: (c) => c.slapd.stop(),
      restore: (c) => c.slapd.start(),
    },
    {
      name: 'SMTP refusing mail (451), accepting again',
      affects: [],
      downMs: down(10_000, 3000),
      async inject(c) {
        smtp.refusedBefore = c.smtp.refused;
        c.smtp.refuseNext(Number.POSITIVE_INFINITY, 451);
      },
      async restore(c) {
        c.smtp.refuseNext(0);
        const refused = c.smtp.refused - smtp.refusedBefore;
        smtp.info.push(`${refused} deliveries refused while it lasted`);
        if (!refused) smtp.notes.push('no mail was refused: nothing shown');
      },
      notes: smtp.notes,
      info: smtp.info,
    },
    {
      name: 'one Latchkey process sent SIGTERM, restarted',
      affects: [],
      downMs: down(5000, 2000),
      // As a load balancer does: out of rotation, then SIGTERM, at a moment when it has
      // requests in flight; it must finish them.
      async inject(c) {
        const b = c.backends[1]!;
        const pending = () =>
          c.recorder.samples.filter((s) => s.backend === b.name && !s.status && !s.error);
        for (let waited = 0; !pending().length && waited < 2000; waited += 5) await sleep(5);
        b.routed = false;
        const inFlight = pending();
        const code = await c.stop(b);
        if (code !== 0) sigterm.notes.push(`process b exited with ${code} after SIGTERM`);
        if (!inFlight.length)
          sigterm.notes.push('no request was in flight on b at SIGTERM: nothing shown');
        const answers = inFlight.map((s) => s.error ?? s.status).join(', ');
        sigterm.info.push(
          `${inFlight.length} requests in flight on b at SIGTERM, answered: ${answers}`,
        );
      },
      restore: (c) => c.start(c.backends[1]!),
      ...sigterm,
    },
  ];
}
