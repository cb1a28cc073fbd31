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
 * operation tried once more on a fresh one.
 */
export function createConnectionPool({
  open,
  size,
}: {
  open: () => Promise<Connection>;
  size: number;
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

  async function acquire(): Promise<{ client: Connection; reused: boolean }> {
    for (;;) {
      if (closed) throw new Error('the directory connection pool is closed');
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
          return { client: await open(), reused: false };
        } catch (err) {
          opened--;
          wakeOne();
          throw err;
        }
      }
      await new Promise<void>((resolve) => waiting.push(resolve));
    }
  }

  function release(client: Connection) {
    if (closed || !client.isBound) return discard(client);
    idle.push(client);
    wakeOne();
  }

  return {
    /** Runs `work` on a pooled connection; a stale reused one is replaced and `work` retried once. */
    async use<T>(work: (client: Connection) => Promise<T>): Promise<T> {
      for (let attempt = 0; ; attempt++) {
        const { client, reused } = await acquire();
        try {
          const result = await work(client);
          // Dropped and silently reconnected during `work`: the answer came unauthenticated.
          if (!client.isBound)
            throw new DirectoryUnavailableError('connection lost during a search');
          release(client);
          return result;
        } catch (err) {
          if (!isConnectionFailure(err)) {
            release(client);
            throw err;
          }
          discard(client);
          if (!reused || attempt > 0) throw err;
        }
      }
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
