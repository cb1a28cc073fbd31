// Directory sync of 10,000 and 100,000 entries on the test slapd (test/support/slapd.ts), the
// people generated as LDIF and loaded with slapadd before slapd starts. Each sync runs in a
// process of its own (sync-run.ts) against throwaway PostgreSQL: the first full sync (creates
// every user), a second full one (nothing changed: the periodic full sync), and an incremental
// one after 100 entries changed.
import { execFile } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Attribute, Change } from 'ldapts';
import { startPostgres } from '../../../test/support/services.ts';
import { GROUPS, PEOPLE, startSlapd } from '../../../test/support/slapd.ts';
import { fmt } from '../format.ts';
import { cleanupStack, type Cleanup } from '../process.ts';

export const SIZES = [10_000, 100_000];
const CHANGES = 100;
const TEAMS = 100;
const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const run = promisify(execFile);

type SyncRun = {
  mode: string;
  ms: number;
  created: number;
  updated: number;
  disabled: number;
  errors: number;
  problems: string[];
  baseRssMiB: number;
  peakRssMiB: number;
  heapBeforeMiB: number;
  peakHeapMiB: number;
  /** The most the heap held just after a major GC during the sync; null when none ran. */
  liveHeapMiB: number | null;
  majorGcs: number;
};
export type DirectoryResult = {
  size: number;
  slapaddSeconds: number;
  first: SyncRun;
  again: SyncRun;
  incremental: SyncRun;
};

const uid = (i: number) => `p${String(i).padStart(7, '0')}`;

/** `size` people in TEAMS groups (groupOfNames), as LDIF in a file. */
async function writeLdif(file: string, size: number): Promise<void> {
  const out = createWriteStream(file);
  const write = async (text: string) => {
    if (!out.write(text)) await once(out, 'drain');
  };
  for (let i = 1; i <= size; i++)
    await write(
      [
        `dn: uid=${uid(i)},${PEOPLE}`,
        'objectClass: inetOrgPerson',
        `uid: ${uid(i)}`,
        `cn: Person ${i}`,
        'givenName: Person',
        `sn: Number ${i}`,
        `mail: ${uid(i)}@people.example.test`,
        '',
        '',
      ].join('\n'),
    );
  for (let t = 0; t < TEAMS; t++) {
    await write(`dn: cn=team-${t},${GROUPS}\nobjectClass: groupOfNames\ncn: team-${t}\n`);
    for (let i = t + 1; i <= size; i += TEAMS) await write(`member: uid=${uid(i)},${PEOPLE}\n`);
    await write('\n');
  }
  out.end();
  await once(out, 'finish');
}

async function syncRun(env: Record<string, string>, mode: 'full' | 'incremental') {
  const { stdout } = await run(
    process.execPath,
    ['--expose-gc', join(ROOT, 'scripts/bench/scale/sync-run.ts'), mode],
    { cwd: ROOT, env, maxBuffer: 1 << 20 },
  );
  const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as SyncRun;
  if (result.errors) throw new Error(`${mode} sync had errors: ${result.problems.join('; ')}`);
  return result;
}

async function benchSize(size: number, cleanup: Cleanup, note: (l: string) => void) {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-scale-ldif-'));
  cleanup.defer(() => rmSync(dir, { recursive: true, force: true }));
  const ldif = join(dir, 'people.ldif');
  await writeLdif(ldif, size);
  const t0 = performance.now();
  const slapd = await startSlapd({ moreLdif: ldif, maxSizeMiB: 2048 });
  cleanup.defer(() => slapd.cleanup());
  const slapaddSeconds = (performance.now() - t0) / 1000;
  const postgres = await startPostgres();
  cleanup.defer(() => postgres.stop());
  const env = {
    PATH: process.env.PATH ?? '',
    SEALING_KEY: Buffer.alloc(32, 7).toString('base64'),
    COOKIE_KEYS: 'test-cookie-key-0123456789abcdefghijklmnop',
    ISSUER: 'http://127.0.0.1:1',
    DATA_DIR: dir,
    DATABASE_URL: postgres.url,
    LOG_LEVEL: 'warn',
    ...slapd.env({ LDAP_TIMEOUT_MS: '10000', LDAP_CONNECT_TIMEOUT_MS: '5000' }),
  };
  note(`directory ${fmt(size)}: slapd up in ${fmt(slapaddSeconds, 1)} s`);
  const first = await syncRun(env, 'full');
  note(
    `directory ${fmt(size)}: first full sync ${fmt(first.ms)} ms, created ${fmt(first.created)}`,
  );
  const again = await syncRun(env, 'full');
  note(`directory ${fmt(size)}: second full sync ${fmt(again.ms)} ms`);
  await slapd.asAdmin(async (client) => {
    for (let i = 1; i <= CHANGES; i++)
      await client.modify(
        `uid=${uid(i * Math.floor(size / CHANGES))},${PEOPLE}`,
        new Change({
          operation: 'replace',
          modification: new Attribute({ type: 'sn', values: [`Renamed ${i}`] }),
        }),
      );
  });
  const incremental = await syncRun(env, 'incremental');
  note(
    `directory ${fmt(size)}: incremental sync ${fmt(incremental.ms)} ms, updated ${incremental.updated}`,
  );
  return { size, slapaddSeconds, first, again, incremental } satisfies DirectoryResult;
}

export async function benchDirectory(cleanup: Cleanup, note: (l: string) => void) {
  const results: DirectoryResult[] = [];
  // Each size on its own slapd and database, taken down before the next.
  for (const size of SIZES) {
    const own = cleanupStack();
    try {
      results.push(await benchSize(size, own, note));
    } finally {
      await own.run();
    }
  }
  void cleanup;
  return results;
}

export function directoryReport(results: DirectoryResult[]): string[] {
  const perSecond = (r: DirectoryResult, s: SyncRun) => r.size / (s.ms / 1000);
  const growth = (s: SyncRun) => s.peakHeapMiB - s.heapBeforeMiB;
  // Without a major GC during the sync, all that is known is that it kept no more than it held.
  const live = (s: SyncRun) =>
    s.liveHeapMiB === null
      ? `≤ ${fmt(growth(s), 1)}`
      : `${fmt(s.liveHeapMiB - s.heapBeforeMiB, 1)} (${s.majorGcs} GC)`;
  const row = (r: DirectoryResult, what: string, s: SyncRun, rate: boolean) =>
    `| ${fmt(r.size)} | ${what} | ${fmt(s.ms)} | ${rate ? fmt(perSecond(r, s)) : '–'} | ${s.created} / ${s.updated} / ${s.disabled} | ${fmt(growth(s), 1)} | ${live(s)} | ${fmt(s.peakRssMiB, 1)} |`;
  const slowestFull = Math.min(
    ...results.flatMap((r) => [r.first, r.again].map((s) => perSecond(r, s))),
  );
  const slowestIncremental = Math.max(...results.map((r) => r.incremental.ms));
  const [small, large] = results;
  return [
    `## Directory sync (test slapd, OpenLDAP preset, LDAP_PAGE_SIZE 500)`,
    '',
    `People in ${TEAMS} groups (groupOfNames), loaded with slapadd (${results.map((r) => `${fmt(r.size)} in ${fmt(r.slapaddSeconds, 1)} s`).join(', ')}, slapd start included). Each sync in a process of its own, as the server runs it; heap growth is the peak of the V8 heap (sampled every 10 ms) above its live size before the sync, garbage included: V8 lets garbage pile up to several times the live heap before a major GC, so this grows with a run's length. Live heap growth is the most the heap held just after a major GC during the sync, above the same start: what the sync kept alive (≤ heap growth when no major GC ran).`,
    '',
    '| entries | sync | ms | entries/s | created / updated / disabled | heap growth MiB | live heap growth MiB | peak RSS MiB |',
    '| --: | --- | --: | --: | --- | --: | --: | --: |',
    ...results.flatMap((r) => [
      row(r, 'first full (creates all)', r.first, true),
      row(r, 'full, nothing changed', r.again, true),
      row(r, `incremental, ${CHANGES} changed`, r.incremental, false),
    ]),
    '',
    `Full sync ≥ 1,000 entries/s: ${slowestFull >= 1000 ? 'met' : '**missed**'} (slowest ${fmt(slowestFull)}/s). Incremental sync of ${CHANGES} changes ≤ 2 s: ${slowestIncremental <= 2000 ? 'met' : '**missed**'} (slowest ${fmt(slowestIncremental)} ms).`,
    small && large
      ? `Memory, ${fmt(large.size)} vs ${fmt(small.size)} entries (full, nothing changed): heap growth ${fmt(growth(large.again), 1)} vs ${fmt(growth(small.again), 1)} MiB, live heap growth ${live(large.again)} vs ${live(small.again)} MiB, peak RSS ${fmt(large.again.peakRssMiB, 1)} vs ${fmt(small.again.peakRssMiB, 1)} MiB.`
      : '',
    '',
  ];
}
