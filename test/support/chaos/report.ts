// The chaos table: one row per fault, then the detail behind each row.
import type { Row } from './run.ts';

const statuses = (failed: Record<string, number>) =>
  Object.entries(failed)
    .sort(([, a], [, b]) => b - a)
    .map(([how, n]) => `${how}×${n}`)
    .join(', ') || 'none';

/** What must be zero for a fault to pass (the issue's "done when"). */
export function losses(row: Row) {
  return {
    refreshTokensLost: row.refreshTokensLost,
    sessionsLost: row.sessionsLost,
    signInsWithoutAudit: row.signInsWithoutAudit,
    mailsLost: row.mailsLost,
    serverErrors: row.serverErrors,
    unhandled: row.unhandled + row.crashes.length,
  };
}

export function chaosTable(rows: Row[]): string {
  const head = [
    'fault',
    'down s',
    'requests',
    'failed (how)',
    'slowest answer ms',
    'recovery s',
    'refresh tokens lost',
    'sessions lost',
    'sign-ins w/o audit',
    'mails lost',
    '5xx ≠ 503',
    'unhandled / crashes',
  ];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => ' --- ').join('|')}|`];
  for (const r of rows) {
    const failed = Object.values(r.failed).reduce((a, b) => a + b, 0);
    lines.push(
      `| ${[
        r.fault,
        r.downSeconds,
        r.requests,
        `${failed} (${statuses(r.failed)})`,
        r.slowestMs,
        r.recoverySeconds ?? 'not recovered',
        r.refreshTokensLost,
        r.sessionsLost,
        r.signInsWithoutAudit,
        r.mailsLost,
        r.serverErrors,
        `${r.unhandled} / ${r.crashes.length}`,
      ].join(' | ')} |`,
    );
  }
  return lines.join('\n');
}

/** Per fault: operations by kind (succeeded/failed), the slowest request, what failed unexpectedly. */
export function chaosDetail(rows: Row[]): string {
  return rows
    .map((r) =>
      [
        `${r.fault}:`,
        `  operations ok/failed: ${Object.entries(r.ops)
          .map(([kind, n]) => `${kind} ${n}`)
          .join('; ')}`,
        `  slowest: ${r.slowest} in ${r.slowestMs} ms`,
        `  checked: ${r.checked.held} browsers with refresh tokens held from before, ` +
          `${r.checked.signIns} sign-ins' audit rows, ${r.checked.mails} promised mails`,
        ...r.unexpected.map((u) => `  unexpected: ${u}`),
        ...r.crashes.map((c) => `  crash: ${c}`),
        ...r.notes.map((n) => `  note: ${n}`),
        ...r.info.map((n) => `  ${n}`),
      ].join('\n'),
    )
    .join('\n');
}

/** DEPENDENCY_TIMEOUT_MS (about 2 s) and a margin: no answer may take longer. */
export const ANSWER_BOUND_MS = 5000;
/** After the dependency is back, every kind of load succeeds again within this. */
export const RECOVERY_BOUND_SECONDS = 10;

/** Everything that keeps a fault from passing; empty when it passes. */
export function problems(row: Row): string[] {
  const found = Object.entries(losses(row))
    .filter(([, n]) => n > 0)
    .map(([what, n]) => `${what}: ${n}`);
  if (row.slowestMs > ANSWER_BOUND_MS)
    found.push(`slowest answer ${row.slowestMs} ms (${row.slowest})`);
  if (row.recoverySeconds === undefined || row.recoverySeconds > RECOVERY_BOUND_SECONDS)
    found.push(`recovery: ${row.recoverySeconds ?? 'never'} s`);
  return [...found, ...row.unexpected.map((u) => `failed: ${u}`), ...row.crashes, ...row.notes];
}
