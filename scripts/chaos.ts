// `npm run chaos`: two Latchkey processes (run from source) on a PostgreSQL and a Redis of their
// own, with a directory and an SMTP server, under a steady loopback load of sign-ins, refreshes,
// client_credentials and password-reset mail; each fault in turn (Redis killed, PostgreSQL
// restarted, directory stopped, SMTP refusing, one process SIGTERMed). Prints the table of what
// failed, how fast, and what was lost; exits non-zero when any fault lost anything, answered a
// 5xx other than 503, took longer than the bound or did not recover.
// --short: the short form (as in `npm test`); --only <text>: the faults whose name has it.
import { parseArgs } from 'node:util';
import { startCluster, type Cluster } from '../test/support/chaos/cluster.ts';
import { faults, TIMINGS } from '../test/support/chaos/faults.ts';
import { chaosDetail, chaosTable, problems } from '../test/support/chaos/report.ts';
import { runFault, type Row } from '../test/support/chaos/run.ts';

const { values } = parseArgs({
  options: { short: { type: 'boolean' }, only: { type: 'string' } },
});
const form = values.short ? 'short' : 'full';
const note = (line: string) => console.error(`chaos: ${line}`);

async function main(): Promise<number> {
  const rows: Row[] = [];
  let cluster: Cluster | undefined;
  const stopOnSignal = () => void cluster?.close().then(() => process.exit(130));
  process.once('SIGINT', stopOnSignal).once('SIGTERM', stopOnSignal);
  try {
    note('starting PostgreSQL, Redis, slapd, SMTP and two Latchkey processes');
    cluster = await startCluster();
    for (const fault of faults(form)) {
      if (values.only && !fault.name.includes(values.only)) continue;
      note(`${fault.name}…`);
      const row = await runFault(cluster, fault, TIMINGS[form]);
      rows.push(row);
      note(`${fault.name}: ${problems(row).join('; ') || 'passed'}`);
    }
  } finally {
    await cluster?.close();
  }
  console.log(`${chaosTable(rows)}\n\n${chaosDetail(rows)}`);
  const failing = rows.filter((r) => problems(r).length);
  for (const r of failing) console.log(`\nFAILED: ${r.fault}: ${problems(r).join('; ')}`);
  return failing.length ? 1 : 0;
}

process.exitCode = await main();
