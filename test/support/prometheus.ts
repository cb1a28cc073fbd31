// A throwaway Prometheus (Debian's `prometheus` package) scraping given targets every second,
// on a free loopback port with its data in a temp folder removed by stop().
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, stopChild, waitForPort } from './services.ts';

export type Prometheus = {
  url: string;
  /** The value of an instant PromQL query with one series; undefined when it has none. */
  query(promql: string): Promise<number | undefined>;
  /** Waits (up to `timeoutMs`) for a fresh scrape of every target after this moment. */
  scraped(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
};

/** `targets`: host:port of each /metrics endpoint to scrape. */
export async function startPrometheus(targets: string[]): Promise<Prometheus> {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-prometheus-'));
  const port = await freePort();
  const config = join(dir, 'prometheus.yml');
  writeFileSync(
    config,
    JSON.stringify({
      global: { scrape_interval: '1s', evaluation_interval: '1s' },
      scrape_configs: [{ job_name: 'latchkey', static_configs: [{ targets }] }],
    }),
  );
  const child = spawn(
    'prometheus',
    [
      `--config.file=${config}`,
      `--web.listen-address=127.0.0.1:${port}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      '--log.level=warn',
    ],
    { stdio: 'ignore' },
  );
  await waitForPort(port);
  const url = `http://127.0.0.1:${port}`;

  async function api(path: string, params: Record<string, string>) {
    const res = await fetch(`${url}/api/v1/${path}?${new URLSearchParams(params)}`);
    const body = (await res.json()) as { status: string; data: unknown; error?: string };
    if (body.status !== 'success') throw new Error(`prometheus ${path}: ${body.error}`);
    return body.data;
  }

  return {
    url,
    async query(promql) {
      const data = (await api('query', { query: promql })) as {
        result: { value: [number, string] }[];
      };
      if (data.result.length > 1) throw new Error(`${promql}: ${data.result.length} series`);
      return data.result[0] ? Number(data.result[0].value[1]) : undefined;
    },
    async scraped(timeoutMs = 15_000) {
      const after = Date.now() / 1000;
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const data = (await api('targets', { state: 'active' })) as {
          activeTargets: { health: string; lastScrape: string }[];
        };
        const fresh = data.activeTargets.every(
          (t) => t.health === 'up' && new Date(t.lastScrape).getTime() / 1000 > after,
        );
        if (fresh && data.activeTargets.length === targets.length) return;
        if (Date.now() > deadline) throw new Error(`no fresh scrape: ${JSON.stringify(data)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    async stop() {
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
