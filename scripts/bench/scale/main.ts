// `npm run bench -- --scale`: how Latchkey holds up as the work grows (issue 17, "Scale"). Not
// part of the default run. BENCH_SCALE=users,sessions,directory,audit picks the parts to run.
import { cleanupStack } from '../process.ts';
import { fmt } from '../format.ts';
import { auditReport, benchAudit } from './audit.ts';
import { benchDirectory, directoryReport } from './directory.ts';
import { benchSessions, sessionsReport } from './sessions.ts';
import { benchUsers, usersReport } from './users.ts';

const note = (line: string) => console.error(`bench --scale: ${line}`);

type Part = { name: string; run(cleanup: ReturnType<typeof cleanupStack>): Promise<string[]> };

const PARTS: Part[] = [
  { name: 'users', run: async (cleanup) => usersReport(await benchUsers(cleanup, note)) },
  {
    name: 'sessions',
    run: async (cleanup) => sessionsReport(await benchSessions(cleanup, note)),
  },
  {
    name: 'directory',
    run: async (cleanup) => directoryReport(await benchDirectory(cleanup, note)),
  },
  { name: 'audit', run: async (cleanup) => auditReport(await benchAudit(cleanup, note)) },
];

/** Runs the parts one after the other, each on its own services; prints the markdown report. */
export async function benchScale(): Promise<number> {
  const chosen = process.env.BENCH_SCALE?.split(',');
  const started = performance.now();
  const sections: string[] = ['# Latchkey at scale', ''];
  let failed = false;
  for (const part of PARTS.filter((p) => !chosen || chosen.includes(p.name))) {
    const cleanup = cleanupStack();
    const stop = () => void cleanup.run().then(() => process.exit(130));
    process.once('SIGINT', stop).once('SIGTERM', stop);
    const t0 = performance.now();
    try {
      note(`${part.name}: starting`);
      sections.push(...(await part.run(cleanup)));
    } catch (err) {
      failed = true;
      sections.push(`## ${part.name}`, '', `FAILED: ${(err as Error).stack ?? err}`, '');
    } finally {
      await cleanup.run();
      process.off('SIGINT', stop).off('SIGTERM', stop);
    }
    note(`${part.name}: done in ${fmt((performance.now() - t0) / 1000)} s`);
  }
  sections.push(`Wall time: ${fmt((performance.now() - started) / 1000)} s.`);
  console.log(sections.join('\n'));
  return failed ? 1 : 0;
}
