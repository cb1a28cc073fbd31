import type { RedisClient } from '../../adapters/redis.ts';
import type { Logger } from '../log.ts';

const CHANNEL = 'latchkey:clients:changed';

/**
 * Tells every process that a client changed, so each drops its cached copy at once: a secret
 * rotated with no overlap (a leaked one) or a deleted client must not keep working elsewhere
 * for CLIENT_CACHE_SECONDS. Redis pub/sub; without Redis there is only one process. Messages
 * sent while a process was not subscribed are lost, so it forgets every cached client when it
 * subscribes again.
 */
export function clientChangeNews(redis: RedisClient | undefined, log: Logger) {
  let subscriber: RedisClient | undefined;
  return {
    /** Says that `clientId` changed; never throws (the change has committed). */
    async tell(clientId: string): Promise<void> {
      if (!redis) return;
      try {
        await redis.publish(CHANNEL, clientId);
      } catch (err) {
        log.warn(
          { error: (err as Error).message },
          'client change not announced to other processes',
        );
      }
    },

    /** Hears of changes for as long as the process runs (a server's; the CLI only tells). */
    listen(onChange: (clientId: string) => void, onMissed: () => void): void {
      if (!redis || subscriber) return;
      const listener = (redis as { duplicate(): RedisClient }).duplicate();
      subscriber = listener;
      // Subscribed once connected (no offline queue), and again after each reconnection.
      // While it was not subscribed, news may have been missed: forget every cached client.
      listener.on('ready', () => {
        listener.subscribe(CHANNEL).then(onMissed, (err: Error) => {
          log.warn({ error: err.message }, 'client changes not heard');
        });
      });
      listener.on('error', () => {}); // reported by the main connection
      listener.on('message', (channel: string, clientId: string) => {
        if (channel === CHANNEL) onChange(clientId);
      });
      // A lazily connecting client's copy waits to be told.
      if (listener.status === 'wait') listener.connect().catch(() => {});
    },

    close(): void {
      subscriber?.disconnect();
      subscriber = undefined;
    },
  };
}

export type ClientChangeNews = ReturnType<typeof clientChangeNews>;
