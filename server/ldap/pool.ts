import type { DirectoryGuard } from './breaker.ts';
import {
  closeConnection,
  DirectoryUnavailableError,
  isConnectionFailure,
  type Connection,
} from './connection.ts';

/**
 * A few connections bound as the service account, shared by every sign-in and sync of the
 * process: searching needs no new TCP + TLS handshake and bind each time. A connection the
 * server has closed (idle timeouts: AD's MaxConnIdleTime is 15 minutes) is dropped, and the
 * operation tried once more on a fresh one. Each use, waiting for a connection included, is one
 * call through the directory's guard: bounded, and refused at once while the directory is out.
 */
export function createConnectionPool({
  open,
  size,
  guard,
}: {
  open: (signal: AbortSignal) => Promise<Connection>;
  size: number;
  guard: DirectoryGuard;
}) {
  const idle: Connection[] = [];
  const waiting: (() => void)[] = [];
  let opened = 0;
  let closed = false;

  const wakeOne = () => waiting.shift()?.();

  function discard(client: Connection) {
    opened--;
    closeConnection(client);
    wakeOne();
  }

  /** Waits for a connection to come back; gives its place up when `signal` aborts. */
  function turn(signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const wake = () => {
        signal.removeEventListener('abort', giveUp);
        resolve();
      };
      const giveUp = () => {
        const at = waiting.indexOf(wake);
        if (at >= 0) waiting.splice(at, 1);
        reject(new DirectoryUnavailableError('no directory connection came free in time'));
      };
      waiting.push(wake);
      signal.addEventListener('abort', giveUp, { once: true });
    });
  }

  async function acquire(signal: AbortSignal): Promise<{ client: Connection; reused: boolean }> {
    for (;;) {
      if (closed) throw new Error('the directory connection pool is closed');
      signal.throwIfAborted();
      const client = idle.pop();
      // ldapts reconnects a dropped connection silently, unbound and without StartTLS: such a
      // connection is never used again.
      if (client?.isBound) return { client, reused: true };
      if (client) {
        discard(client);
        continue;
      }
      if (opened < size) {
        opened++;
        try {
          return { client: await open(signal), reused: false };
        } catch (err) {
          opened--;
          wakeOne();
          throw err;
        }
      }
      await turn(signal);
    }
  }

  function release(client: Connection) {
    if (closed || !client.isBound) return discard(client);
    idle.push(client);
    wakeOne();
  }

  /** `work` on a pooled connection; a stale reused one is replaced and `work` tried once more. */
  async function attempt<T>(work: (client: Connection) => Promise<T>, signal: AbortSignal) {
    for (let tries = 0; ; tries++) {
      const { client, reused } = await acquire(signal);
      try {
        const result = await work(client);
        // Dropped and silently reconnected during `work`: the answer came unauthenticated.
        if (!client.isBound) throw new DirectoryUnavailableError('connection lost during a search');
        release(client);
        return result;
      } catch (err) {
        if (!isConnectionFailure(err)) {
          release(client);
          throw err;
        }
        discard(client);
        if (!reused || tries > 0) throw err;
      }
    }
  }

  return {
    /** Runs `work` on a pooled connection, within the guard (waiting for a connection included). */
    use<T>(
      work: (client: Connection) => Promise<T>,
      options?: Parameters<DirectoryGuard>[1],
    ): Promise<T> {
      return guard((signal) => attempt(work, signal), options);
    },

    /** Connections open now, for tests and diagnostics. */
    get size() {
      return opened;
    },

    close() {
      closed = true;
      for (const client of idle.splice(0)) discard(client);
      for (const wake of waiting.splice(0)) wake();
    },
  };
}

export type ConnectionPool = ReturnType<typeof createConnectionPool>;
