import cluster, { type Worker } from 'node:cluster';
import {
  AggregatorRegistry,
  type MetricObjectWithValues,
  type MetricValue,
  type Registry,
} from 'prom-client';
import type { Logger } from '../log.ts';
import { sampledRegistry, type Scrape } from '../metrics/listener.ts';
import type { Metrics } from '../metrics/metrics.ts';

// With WORKERS, the primary serves METRICS_PORT: a scrape asks every worker for its figures
// over the cluster's IPC channel and answers them combined, each metric by its `aggregator`
// (counters and histograms summed; gauges of shared state taken once: server/metrics/metrics.ts).
// Were METRICS_PORT a port the workers shared, each scrape would get one random worker's.

type Figures = MetricObjectWithValues<MetricValue<string>>[];

const ASK = 'latchkey:metrics?';
const ANSWER = 'latchkey:metrics';

type Ask = { type: typeof ASK; id: number };
type Answer = { type: typeof ANSWER; id: number; figures: Figures };

const isAsk = (m: unknown): m is Ask => (m as Ask | undefined)?.type === ASK;
const isAnswer = (m: unknown): m is Answer => (m as Answer | undefined)?.type === ANSWER;

/** In a worker: answers the primary's scrapes with this process's figures, samplers run first. */
export function answerScrapes(metrics: Metrics, timeoutMs: number, log: Logger): () => void {
  const onMessage = (message: unknown) => {
    if (!isAsk(message)) return;
    sampledRegistry(metrics, timeoutMs, log)
      .then((registry) => registry.getMetricsAsJSON())
      .then((figures) => {
        const answer: Answer = { type: ANSWER, id: message.id, figures: figures as Figures };
        // The primary gone, nobody asks any more: nothing to report.
        process.send?.(answer, undefined, undefined, () => undefined);
      })
      .catch((err: unknown) => log.warn({ err }, 'metrics for the primary failed'));
  };
  process.on('message', onMessage);
  return () => process.off('message', onMessage);
}

/** Counters and histograms only: what stays in the sums after the worker that counted it is gone. */
const counts = (figures: Figures) =>
  // prom-client's types say an enum; its JSON has the type's name.
  figures.filter((m) => ['counter', 'histogram'].includes(m.type as unknown as string));

/**
 * In the primary: one scrape of the whole process tree, its own `registry` (worker restarts)
 * included. A worker that does not answer within `timeoutMs` is counted with its figures of the
 * scrape before. The counts of a worker that exited stay in the sums, so a restart does not look
 * like a counter reset to Prometheus (only what it counted since the last scrape is lost).
 */
export function clusterScrape(registry: Registry, timeoutMs: number) {
  const latest = new Map<number, Figures>();
  let retired: Figures = [];
  const waiting = new Map<number, (figures: Figures) => void>();
  let nextId = 0;

  cluster.on('message', (_worker, message: unknown) => {
    if (isAnswer(message)) waiting.get(message.id)?.(message.figures);
  });
  let retiring = Promise.resolve();
  cluster.on('exit', (worker) => {
    const last = latest.get(worker.id);
    latest.delete(worker.id);
    if (!last) return;
    retiring = retiring.then(async () => {
      const sums = AggregatorRegistry.aggregate([retired, counts(last)]);
      retired = counts((await sums.getMetricsAsJSON()) as Figures);
    });
  });

  async function ask(worker: Worker): Promise<void> {
    const id = nextId++;
    const figures = await new Promise<Figures | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), timeoutMs);
      waiting.set(id, (f) => (clearTimeout(timer), resolve(f)));
      worker.send({ type: ASK, id } satisfies Ask, undefined, (err) => err && resolve(undefined));
    });
    waiting.delete(id);
    if (figures && cluster.workers?.[worker.id]) latest.set(worker.id, figures);
  }

  return async (): Promise<Scrape> => {
    const workers = Object.values(cluster.workers ?? {}).filter((w) => w?.isConnected());
    await Promise.all(workers.map((w) => ask(w!)));
    await retiring;
    const own = (await registry.getMetricsAsJSON()) as Figures;
    const combined = AggregatorRegistry.aggregate([...latest.values(), retired, own]);
    return { contentType: combined.contentType, body: await combined.metrics() };
  };
}
