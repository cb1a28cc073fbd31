// The default run: Latchkey on both storages and the bare oidc-provider reference on both
// adapters, all running at once, measured in turn on the same load generator and client code.
import { setTimeout as sleep } from 'node:timers/promises';
import { PG_STATS_SETTLE_MS, SERVERS, type Results } from './plan.ts';
import type { Cleanup } from './process.ts';
import { startServers, type Note, type Server } from './servers.ts';
import { benchFlows, benchResponsiveness } from './stage-flows.ts';
import { benchTokenEndpoints } from './stage-tokens.ts';

export async function benchComparison(
  results: Results,
  cleanup: Cleanup,
  note: Note,
): Promise<void> {
  let servers: Server[] = [];
  try {
    servers = await startServers(SERVERS, cleanup, note);
    // Let the server's start-up queries reach pg_stat before the first reading.
    await sleep(PG_STATS_SETTLE_MS);
    await benchTokenEndpoints(servers, results, note);
    await benchFlows(servers, results, note);
    await benchResponsiveness(servers, results, note);
    for (const server of servers)
      results.rss.push({ server: server.name, peakMiB: server.peakRssMiB() });
  } finally {
    for (const server of servers) {
      // Latchkey's start-up banner is plain text; its log lines (warnings and errors here) are
      // JSON. The bare server prints its errors as they come.
      const output = server.output().split('\n');
      const lines = server.storage
        ? output.filter((l) => l.startsWith('{'))
        : output.filter((l) => l && !l.startsWith('oidc-provider WARNING'));
      results.serverLogs.push({ server: server.name, lines });
    }
  }
}
