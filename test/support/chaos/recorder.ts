// What the chaos load saw: every HTTP request (its status or error, and how long its answer
// took) and every operation (a sign-in, a refresh…) made of them, each request tagged with the
// operation it belongs to.
import { AsyncLocalStorage } from 'node:async_hooks';

/** A request that never answers fails after this: long enough to measure a hang truthfully. */
const REQUEST_TIMEOUT_MS = 60_000;

export type Sample = {
  op: number;
  kind: string;
  method: string;
  /** The path, ids in it replaced by ':id', so that alike requests group. */
  path: string;
  backend: string;
  /** Milliseconds since the recorder's epoch. */
  start: number;
  ms: number;
  /** The HTTP status; 0 when no answer came (then `error` says why). */
  status: number;
  error?: string;
  requestId?: string | undefined;
};

export type Op = {
  id: number;
  kind: string;
  start: number;
  end: number;
  ok: boolean;
  why?: string;
};

/** Where a request goes: the Latchkey process a load balancer would pick. */
export type Pick = () => { name: string; url: string };

const now = (epoch: number) => performance.now() - epoch;
const shape = (path: string) =>
  path.replace(/\/interaction\/[^/]+/, '/interaction/:id').replace(/\/auth\/[^/?]+/, '/auth/:id');

function failureOf(err: unknown): string {
  const e = err as Error & { cause?: { code?: string } };
  if (e.name === 'TimeoutError') return 'timeout';
  return e.cause?.code ?? e.name ?? 'error';
}

export function createRecorder(pick: Pick) {
  const epoch = performance.now();
  const context = new AsyncLocalStorage<{ op: number; kind: string }>();
  const samples: Sample[] = [];
  const ops: Op[] = [];
  let nextOp = 1;

  /**
   * fetch, sent to the backend `pick` chooses (the issuer's origin swapped for the backend's),
   * the answer read in full before it is timed and handed back.
   */
  const transport: typeof fetch = async (input, init = {}) => {
    const url = new URL(input instanceof Request ? input.url : input);
    const backend = pick();
    const at = context.getStore() ?? { op: 0, kind: 'setup' };
    const sample: Sample = {
      op: at.op,
      kind: at.kind,
      method: init.method ?? 'GET',
      path: shape(url.pathname),
      backend: backend.name,
      start: now(epoch),
      ms: 0,
      status: 0,
    };
    samples.push(sample);
    const timeout = AbortSignal.timeout(REQUEST_TIMEOUT_MS);
    try {
      const res = await fetch(new URL(`${url.pathname}${url.search}`, backend.url), {
        ...init,
        signal: init.signal ? AbortSignal.any([init.signal, timeout]) : timeout,
      });
      await res.clone().arrayBuffer();
      sample.status = res.status;
      sample.requestId = res.headers.get('x-request-id') ?? undefined;
      // Relative redirects resolve against the issuer, as in a browser behind the balancer.
      return Object.defineProperty(res, 'url', { value: url.href });
    } catch (err) {
      sample.error = failureOf(err);
      throw err;
    } finally {
      sample.ms = now(epoch) - sample.start;
    }
  };

  return {
    transport,
    samples,
    ops,
    now: () => now(epoch),
    /** Runs one operation of `kind`; its requests are tagged with it. Never throws. */
    async op<T>(kind: string, work: () => Promise<T>): Promise<T | undefined> {
      const op: Op = { id: nextOp++, kind, start: now(epoch), end: 0, ok: false };
      ops.push(op);
      try {
        const result = await context.run({ op: op.id, kind }, work);
        op.ok = true;
        return result;
      } catch (err) {
        op.why = (err as Error).message.slice(0, 200);
        return undefined;
      } finally {
        op.end = now(epoch);
      }
    },
    /** The samples of the operation running here (inside `op`). */
    ownSamples() {
      const id = context.getStore()?.op;
      return samples.filter((s) => s.op === id);
    },
    /** Forgets what was recorded: a new phase starts. */
    clear() {
      samples.length = 0;
      ops.length = 0;
    },
  };
}

export type Recorder = ReturnType<typeof createRecorder>;
