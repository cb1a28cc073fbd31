import type { BootstrapReport } from '../bootstrap.ts';

// Apart from primary.ts, which a worker never loads (it brings prom-client along).
const READY = 'latchkey:ready';

/** What a worker tells the primary once it serves: its port, and what its first start created. */
export type Ready = { type: typeof READY; port: number; report: BootstrapReport };

export const isReady = (m: unknown): m is Ready => (m as Ready | undefined)?.type === READY;

/** In a worker, once it listens: tells the primary, which prints the banner once for all. */
export function announceReady(port: number, report: BootstrapReport): void {
  process.send?.({ type: READY, port, report } satisfies Ready);
}
