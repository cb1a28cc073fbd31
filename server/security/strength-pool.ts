import { Piscina } from 'piscina';
import type { StrengthProblem, StrengthTask } from './password-strength.ts';

export type StrengthPoolOptions = {
  /** Worker threads estimating at once. */
  threads: number;
  /** Checks that may wait for a thread; one more is refused at once (StrengthCheckBusyError). */
  queue: number;
};

/** More checks are waiting than the queue holds: the form should ask to try again shortly. */
export class StrengthCheckBusyError extends Error {
  constructor() {
    super('too many password strength checks are waiting');
  }
}

// The worker is this folder's password-strength module, as .ts when run from source (Node strips
// the types) and as .js from dist/: whichever this module itself is.
const WORKER = new URL(
  `./password-strength${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`,
  import.meta.url,
);

/**
 * Each thread's V8 heap. zxcvbn's dictionaries are ~30 MiB of live objects and an estimate leaves
 * only garbage, but with V8's defaults (a 32 MiB young generation, an old generation allowed to
 * grow toward the machine's memory) a thread's heap grew to ~100-140 MiB over 200 estimates and
 * its resident memory by ~200 MiB. With these bounds it stays at ~45 MiB of heap and ~75 MiB
 * resident, at the same time per estimate (measured on 2 cores, random and worst-case inputs).
 * The old generation's bound is 8x what it holds: an estimate can never come near it.
 */
const THREAD_HEAP = { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 256 };

/**
 * zxcvbn on a small pool of worker threads, off the event loop. The threads start (and build
 * their dictionaries) at start(), so no one's first password pays for it, or else at the first
 * check: a process that checks no password (the CLI) never starts them. close() on shutdown.
 */
export function createStrengthPool({ threads, queue }: StrengthPoolOptions) {
  let pool: Piscina<StrengthTask, StrengthProblem | null> | undefined;
  let inFlight = 0;
  let closed = false;
  const started = () =>
    (pool ??= new Piscina<StrengthTask, StrengthProblem | null>({
      filename: WORKER.href,
      minThreads: threads,
      maxThreads: threads,
      maxQueue: queue,
      idleTimeout: Number.MAX_SAFE_INTEGER,
      resourceLimits: THREAD_HEAP,
    }));

  return {
    /** Starts the threads now (the server does, at start), unless closed. */
    start(): void {
      if (!closed) started();
    },
    /** What is wrong with the password's strength, or null; StrengthCheckBusyError when full. */
    async estimate(task: StrengthTask): Promise<StrengthProblem | null> {
      // Counted here, in one synchronous step, rather than trusting piscina's queue to be full.
      if (closed) throw new Error('the password strength pool is closed');
      if (inFlight >= threads + queue) throw new StrengthCheckBusyError();
      inFlight++;
      try {
        return await started().run(task);
      } finally {
        inFlight--;
      }
    },
    /** Worker threads running now. */
    threadCount: () => pool?.threads.length ?? 0,
    /** Waits for the checks under way, then ends the threads; later checks are refused. */
    async close(): Promise<void> {
      closed = true;
      await pool?.close();
    },
  };
}

export type StrengthPool = ReturnType<typeof createStrengthPool>;
