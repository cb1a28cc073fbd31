// The short form of `npm run chaos` (scripts/chaos.ts): each fault for a few seconds under the
// steady load of two Latchkey processes, which must lose nothing and fail fast and clearly.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../support/chaos/cluster.ts';
import { faults, TIMINGS } from '../support/chaos/faults.ts';
import {
  ANSWER_BOUND_MS,
  chaosDetail,
  chaosTable,
  problems,
  RECOVERY_BOUND_SECONDS,
} from '../support/chaos/report.ts';
import { runFault, type Row } from '../support/chaos/run.ts';

// A fault that hangs requests may take up to the load's 60 s request timeout to show it.
const FAULT_TIMEOUT_MS = 180_000;
const SETUP_TIMEOUT_MS = 120_000;

describe('chaos: two processes under load while a dependency fails', () => {
  let cluster: Cluster | undefined;
  const rows: Row[] = [];

  beforeAll(async () => {
    cluster = await startCluster();
  }, SETUP_TIMEOUT_MS);
  afterAll(async () => {
    if (rows.length) console.log(`${chaosTable(rows)}\n\n${chaosDetail(rows)}`);
    await cluster?.close();
  }, SETUP_TIMEOUT_MS);

  for (const fault of faults('short'))
    it(
      `${fault.name}: no 5xx but 503, answers within ${ANSWER_BOUND_MS} ms, nothing lost, recovered within ${RECOVERY_BOUND_SECONDS} s`,
      async () => {
        const row = await runFault(cluster!, fault, TIMINGS.short);
        rows.push(row);
        expect(row.checked.signIns).toBeGreaterThan(0);
        expect(problems(row)).toEqual([]);
      },
      FAULT_TIMEOUT_MS,
    );
});
