// `node scripts/bench/memory.ts [name=json-env ...]`: peak RSS (VmHWM) of the built server on
// PostgreSQL + Redis under the benchmark's kinds of load, phase by phase, for server variants
// that differ only in their environment (e.g. 'arenas2={"MALLOC_ARENA_MAX":"2"}'). Each round
// starts a fresh process per variant, on one shared storage, in an order rotated every round.
// Run `npm run build` first. A short stand-in for `npm run bench`'s RSS row, to A/B a change.
// BENCH_NODE_ARGS in a variant's environment: options for node itself (V8 flags). With
// --inspect there, each phase also prints the V8 heap spaces (GC_FIRST=1: after a full GC, which
// needs --expose-gc too); SMAPS=1 prints the resident memory by kind of mapping. ROUNDS=n.
import { readFileSync } from 'node:fs';
import { Browser } from './http-client.ts';
import {
  hammer,
  opaqueClientCredentials,
  passwordLoginFlow,
  runJobs,
  sessionFlow,
} from './load.ts';
import type { RelyingParty } from './load.ts';
import { healthzUnderRegistrations } from './responsiveness.ts';
import { cleanupStack } from './process.ts';
import { startSibling, startTarget, type Target } from './target.ts';

const ROUNDS = Number(process.env.ROUNDS ?? 2);
const variants = Object.fromEntries(
  (process.argv.length > 2 ? process.argv.slice(2) : ['base={}']).map((arg) => {
    const at = arg.indexOf('=');
    return [arg.slice(0, at), JSON.parse(arg.slice(at + 1)) as Record<string, string>];
  }),
);

function memory(pid: number) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1]) / 1024;
  return {
    rss: field('VmRSS'),
    hwm: field('VmHWM'),
    anon: field('RssAnon'),
    file: field('RssFile'),
    threads: field('Threads') * 1024,
  };
}

/** With --inspect in the variant's NODE_OPTIONS: the V8 heap spaces and memoryUsage(), in MiB. */
async function v8Stats(target: Target): Promise<string> {
  const ws = /ws:\/\/\S+/.exec(target.output())?.[0];
  if (!ws) return '';
  const socket = new WebSocket(ws);
  await new Promise((resolve) => socket.addEventListener('open', resolve, { once: true }));
  const expression = `(() => { ${process.env.GC_FIRST ? 'globalThis.gc();' : ''} const mib = (n) => Math.round(n / 1048576); const v8 = process.getBuiltinModule('v8');
    const u = process.memoryUsage(); const h = v8.getHeapStatistics();
    return JSON.stringify({ rss: mib(u.rss), heapTotal: mib(u.heapTotal), heapUsed: mib(u.heapUsed), external: mib(u.external), arrayBuffers: mib(u.arrayBuffers), malloced: mib(h.malloced_memory), peakMalloced: mib(h.peak_malloced_memory),
      spaces: Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name.replace('_space', ''), mib(s.space_size) + '/' + mib(s.space_used_size)])) }); })()`;
  socket.send(JSON.stringify({ id: 1, method: 'Runtime.evaluate', params: { expression } }));
  const reply = await new Promise<string>((resolve) =>
    socket.addEventListener('message', (e) => resolve(String(e.data)), { once: true }),
  );
  socket.close();
  return (JSON.parse(reply) as { result: { result: { value: string } } }).result.result.value;
}

/** The mappings holding the most resident memory: "rss/size name" in MiB. */
function topMappings(pid: number): string {
  const maps: { name: string; size: number; rss: number }[] = [];
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head)
      maps.push({
        name: head[3] || 'anon',
        size: (parseInt(head[2]!, 16) - parseInt(head[1]!, 16)) / 1048576,
        rss: 0,
      });
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) maps.at(-1)!.rss = Number(rss[1]) / 1024;
  }
  const anon = maps.filter((m) => m.name === 'anon');
  const bySize = new Map<string, { n: number; rss: number }>();
  for (const m of anon) {
    const key = m.size >= 1 ? `${Math.round(m.size)}M` : '<1M';
    const e = bySize.get(key) ?? { n: 0, rss: 0 };
    bySize.set(key, { n: e.n + 1, rss: e.rss + m.rss });
  }
  const named = maps
    .filter((m) => m.name !== 'anon' && m.rss > 2)
    .map((m) => `${m.name.split('/').pop()} ${m.rss.toFixed(0)}`);
  const groups = [...bySize]
    .sort((a, b) => b[1].rss - a[1].rss)
    .slice(0, 12)
    .map(([k, e]) => `${e.n}x${k}: ${e.rss.toFixed(0)}`);
  return `anon by mapping size ${groups.join(', ')} | named ${named.join(', ')}`;
}

async function phases(target: Target) {
  const out: Record<string, ReturnType<typeof memory>> = { started: memory(target.pid) };
  const stats = async (phase: string) => {
    const s = await v8Stats(target);
    if (s) console.error(`  ${phase}: ${s}`);
    if (process.env.SMAPS) console.error(`  ${phase} mappings: ${topMappings(target.pid)}`);
  };
  await stats('started');
  const rp: RelyingParty = { issuer: target.url, client: target.web };
  const check = (failed: number, what: string) => {
    if (failed) throw new Error(`${what}: ${failed} failures`);
  };
  const cc = await hammer(opaqueClientCredentials(target.url, target.service), 50, 6000);
  check(cc.failed, 'client_credentials');
  out.tokens = memory(target.pid);
  await stats('tokens');
  for (const workers of [1, 4, 8]) {
    const flows = await runJobs(60, workers, async () => () => passwordLoginFlow(rp));
    check(flows.failed, 'password flows');
  }
  out.passwords = memory(target.pid);
  await stats('passwords');
  const sessions = await runJobs(400, 8, async () => {
    const browser = new Browser();
    await passwordLoginFlow(rp, browser);
    return () => sessionFlow(rp, browser);
  });
  check(sessions.failed, 'session flows');
  out.sessions = memory(target.pid);
  await stats('sessions');
  const reg = await healthzUnderRegistrations(rp, 80, 8);
  check(reg.registrations.failed, 'registrations');
  out.registrations = memory(target.pid);
  await stats('registrations');
  const rates = `cc ${cc.perSecond.toFixed(0)}/s, sessions ${sessions.perSecond.toFixed(0)}/s`;
  return { out, healthzP99: reg.loaded.p99Ms, rates };
}

const cleanup = cleanupStack();
try {
  const base = await startTarget('postgres+redis', cleanup);
  const names = Object.keys(variants);
  const rows: string[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const order = names.map((_, i) => names[(i + round) % names.length]!);
    for (const name of order) {
      const each = cleanupStack();
      try {
        const target = await startSibling(base, variants[name]!, each);
        const { out, healthzP99, rates } = await phases(target);
        const cells = Object.entries(out).map(
          ([phase, m]) => `${phase} ${m.rss.toFixed(0)}/${m.hwm.toFixed(0)}`,
        );
        const last = out.registrations!;
        const line = `${name} r${round + 1}: peak ${last.hwm.toFixed(1)} MiB (anon ${last.anon.toFixed(0)}, file ${last.file.toFixed(0)}, threads ${last.threads}) | rss/hwm ${cells.join(', ')} | healthz p99 ${healthzP99.toFixed(1)} ms | ${rates}`;
        console.error(line);
        rows.push(line);
      } finally {
        await each.run();
      }
    }
  }
  console.log(rows.join('\n'));
} finally {
  await cleanup.run();
}
