// One fault, measured: state held from before it, the load running through it, then what
// failed, how long recovery took, and what was lost.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Cluster } from './cluster.ts';
import type { Fault, Timing } from './faults.ts';
import {
  establish,
  KINDS,
  newLedger,
  refreshOnce,
  sessionCheck,
  startLoad,
  type Held,
  type Ledger,
} from './load.ts';
import type { Op, Sample } from './recorder.ts';

export type Row = {
  fault: string;
  downSeconds: number;
  requests: number;
  /** Failed requests (no answer, or 4xx/5xx) by status or error. */
  failed: Record<string, number>;
  /** Failed requests of kinds the fault should not touch, or answered other than 503. */
  unexpected: string[];
  slowestMs: number;
  slowest: string;
  /** Seconds from the fault's end until every kind of load succeeds again; undefined: never. */
  recoverySeconds: number | undefined;
  refreshTokensLost: number;
  sessionsLost: number;
  signInsWithoutAudit: number;
  mailsLost: number;
  /** Answers 5xx other than 503. */
  serverErrors: number;
  /** 'unhandled'/'uncaught' lines the processes printed, and processes that died unasked. */
  unhandled: number;
  crashes: string[];
  /** Operations per kind: succeeded / failed. */
  ops: Record<string, string>;
  /** How much the loss columns looked at. */
  checked: { held: number; signIns: number; mails: number };
  notes: string[];
  info: string[];
};

const UNHANDLED = /unhandled|uncaught/i;
const countUnhandled = (output: string) =>
  output.split('\n').filter((l) => UNHANDLED.test(l)).length;

/**
 * When the load had recovered: for each kind that failed, the end of its first success that
 * started after both the fault's end and its last failure. Undefined while one has not.
 */
export function recoveredAt(ops: Op[], faultStart: number, faultEnd: number) {
  let at = faultEnd;
  for (const kind of KINDS) {
    const mine = ops.filter((o) => o.kind === kind && o.end > 0);
    const failed = mine.filter((o) => !o.ok && o.end >= faultStart);
    if (!failed.length) continue;
    const after = Math.max(faultEnd, ...failed.map((o) => o.start));
    const success = mine.find((o) => o.ok && o.start >= after);
    if (!success) return undefined;
    at = Math.max(at, success.end);
  }
  return at;
}

async function observeRecovery(c: Cluster, faultStart: number, faultEnd: number, t: Timing) {
  for (;;) {
    const at = recoveredAt(c.recorder.ops, faultStart, faultEnd);
    const now = c.recorder.now();
    if (at !== undefined && now - at >= t.stableMs) return at;
    if (now - faultEnd > t.recoveryMs) return undefined;
    await sleep(250);
  }
}

/** Tries `check` up to three times while it fails for want of an answer; lost is lost at once. */
async function settle(c: Cluster, kind: string, check: () => Promise<boolean>) {
  for (let attempt = 0; attempt < 3; attempt++) {
    const kept = await c.recorder.op(kind, check);
    if (kept !== undefined) return kept;
    await sleep(1000);
  }
  return false;
}

async function checkHeld(c: Cluster, held: Held[], kind: string) {
  let tokens = 0;
  let sessions = 0;
  for (const h of held) {
    const token = await settle(c, `${kind} refresh`, async () => {
      const next = await refreshOnce(c, h.refreshToken);
      if (next === 'lost') return false;
      h.refreshToken = next;
      return true;
    });
    if (!token) tokens++;
    const session = await settle(c, `${kind} session`, async () => {
      return (await sessionCheck(c, h.browser)) === 'ok';
    });
    if (!session) sessions++;
  }
  return { tokens, sessions };
}

/** Refreshes and silent sign-ins with held state while the fault lasts: one try each. */
async function touch(c: Cluster, held: Held[]) {
  await Promise.all(
    held.map(async (h) => {
      await c.recorder.op('held refresh during fault', async () => {
        const next = await refreshOnce(c, h.refreshToken);
        if (next !== 'lost') h.refreshToken = next;
      });
      await c.recorder.op('held session during fault', () => sessionCheck(c, h.browser));
    }),
  );
}

async function auditMissing(c: Cluster, requestIds: string[]): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    try {
      const found = await c.query((db) =>
        db('audit_events')
          .whereIn('request_id', requestIds)
          .where({ type: 'sign_in', outcome: 'success' })
          .pluck('request_id'),
      );
      const recorded = new Set(found);
      return requestIds.filter((id) => !recorded.has(id)).length;
    } catch (err) {
      if (attempt >= 10) throw err;
      await sleep(1000);
    }
  }
}

async function mailsMissing(c: Cluster, ledger: Ledger, waitMs: number): Promise<number> {
  const deadline = Date.now() + waitMs;
  const missing = () =>
    ledger.mails.filter(
      (uid) => !c.smtp.messages.some((m) => (m.text ?? '').includes(`/interaction/${uid}/reset`)),
    );
  while (missing().length && Date.now() < deadline) await sleep(250);
  return missing().length;
}

const failedSample = (s: Sample) => s.status === 0 || s.status >= 400;
const affected = (fault: Fault, kind: string) =>
  fault.affects === 'all' ||
  fault.affects.some((k) => kind === k) ||
  // Held state is exercised during the fault by refreshes and silent sign-ins.
  (kind.startsWith('held') && fault.affects.includes('refresh'));

function summarise(samples: Sample[], ops: Op[], fault: Fault) {
  const failed: Record<string, number> = {};
  const unexpected = new Map<string, number>();
  for (const s of samples.filter(failedSample)) {
    const how = s.error ?? String(s.status);
    failed[how] = (failed[how] ?? 0) + 1;
    if (s.status !== 503 || !affected(fault, s.kind)) {
      const what = `${s.kind}: ${s.method} ${s.path} → ${how}`;
      unexpected.set(what, (unexpected.get(what) ?? 0) + 1);
    }
  }
  const slowest = samples.reduce<Sample | undefined>(
    (a, s) => (a && a.ms >= s.ms ? a : s),
    undefined,
  );
  const opCounts: Record<string, string> = {};
  for (const kind of new Set(ops.map((o) => o.kind))) {
    const mine = ops.filter((o) => o.kind === kind);
    const ok = mine.filter((o) => o.ok).length;
    opCounts[kind] = `${ok}/${mine.length - ok}`;
  }
  return {
    requests: samples.length,
    failed,
    unexpected: [...unexpected].map(([what, n]) => `${n}× ${what}`),
    slowestMs: Math.round(slowest?.ms ?? 0),
    slowest: slowest
      ? `${slowest.kind}: ${slowest.method} ${slowest.path} → ${slowest.error ?? slowest.status}` +
        (slowest.requestId ? ` (request ${slowest.requestId})` : '')
      : '',
    serverErrors: samples.filter((s) => s.status >= 500 && s.status !== 503).length,
    ops: opCounts,
  };
}

export async function runFault(c: Cluster, fault: Fault, t: Timing): Promise<Row> {
  await c.ensureUp();
  const ledger = newLedger();
  const held = await establish(c, ledger, t.held);
  const unhandledBefore = countUnhandled(c.output());
  const crashesBefore = c.crashes.length;
  c.recorder.clear();

  const load = startLoad(c, ledger);
  await sleep(t.baselineMs);
  const faultStart = c.recorder.now();
  await fault.inject(c);
  await sleep(fault.downMs / 2);
  // Half the held state is used while the fault lasts (not awaited: it may hang).
  const touched = touch(c, held.slice(0, held.length / 2));
  await sleep(fault.downMs / 2);
  await fault.restore(c);
  const faultEnd = c.recorder.now();
  const recovered = await observeRecovery(c, faultStart, faultEnd, t);
  await load.stop();
  await touched;

  const lost = await checkHeld(c, held, 'held after recovery');
  const result: Row = {
    fault: fault.name,
    downSeconds: Math.round((faultEnd - faultStart) / 100) / 10,
    ...summarise(c.recorder.samples, c.recorder.ops, fault),
    recoverySeconds:
      recovered === undefined ? undefined : Math.round((recovered - faultEnd) / 100) / 10,
    refreshTokensLost: lost.tokens + ledger.tokensLost,
    sessionsLost: lost.sessions,
    signInsWithoutAudit: await auditMissing(c, ledger.signIns),
    mailsLost: await mailsMissing(c, ledger, t.mailWaitMs),
    unhandled: countUnhandled(c.output()) - unhandledBefore,
    crashes: c.crashes.slice(crashesBefore),
    checked: { held: held.length, signIns: ledger.signIns.length, mails: ledger.mails.length },
    notes: [...(fault.notes ?? [])],
    info: [...(fault.info ?? [])],
  };
  return result;
}
