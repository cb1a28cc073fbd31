import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { ClaimedMail, OutboxStore } from './outbox-store.ts';
import { describe, errorCode, refusedForGood } from './smtp-errors.ts';
import type { MailTransport } from './transport.ts';

export type OutboxTiming = {
  /** How often the outbox is looked at for mail that became due (others' included). */
  pollMs: number;
  /** The first retry's delay; each next one doubles, up to retryMaxMs. */
  retryBaseMs: number;
  retryMaxMs: number;
  /** How long a claimed mail is held: longer than any one send may take. */
  leaseMs: number;
  /** The longest a mail may wait, for mail whose links do not say sooner. */
  maxAgeMs: number;
};

export const DEFAULT_OUTBOX_TIMING: OutboxTiming = {
  // Mail this process stores is tried at once; this is for retries and other processes' mail.
  pollMs: 1000,
  // 1 s, 2 s, 4 s … then every minute: an SMTP restart is ridden out within seconds, mail goes
  // out within a minute of the end of a long outage, which costs a connection attempt per
  // waiting mail a minute. The first mail the server takes again makes the rest due at once.
  retryBaseMs: 1000,
  retryMaxMs: 60_000,
  // nodemailer gives up after 10 s to connect, 10 s for the greeting and 30 s of silence: a send
  // still going after two minutes is taken to be in a process that died.
  leaseMs: 2 * 60_000,
  // An emailed link is worth nothing once expired; a notice a day late is news to nobody.
  maxAgeMs: 24 * 3600_000,
};

/** Mails claimed at once, sent side by side. */
const BATCH = 10;

export type DrainerDeps = {
  store: OutboxStore;
  transport: MailTransport;
  log: Logger;
  timing: OutboxTiming;
  metrics: Metrics;
};

/**
 * Sends what the outbox holds, in every process: claims due mail, sends it, and reports how it
 * went (sent, tried again later with exponential backoff, or given up). Log lines name the mail
 * by its id and template, and its recipient masked; never its links.
 */
export function startDrainer({ store, transport, log, timing, metrics }: DrainerDeps) {
  let stopping = false;
  let running: Promise<void> | undefined;
  let again = false;
  let unreachable = false;

  async function attempt(claimed: ClaimedMail): Promise<void> {
    const { id, template, attempts } = claimed;
    // The logger masks the address (al***@example.com): enough to answer "did my mail go out?".
    const to = claimed.mail?.to;
    /** Kept as failed, and counted: the log line gives how many the outbox holds so. */
    async function giveUp(reason: string) {
      const failed = await store.giveUp(claimed, reason);
      metrics.mailFailed.inc();
      log.error({ id, template, to, attempts, reason, failed }, 'mail given up');
    }
    if (!claimed.mail || claimed.expiresAt.getTime() <= Date.now())
      return giveUp(claimed.mail ? 'expired' : 'unreadable');
    let messageId: string;
    try {
      messageId = await transport.deliver(claimed.mail);
    } catch (err) {
      const delayMs = stopping
        ? 0 // the next process may try it at once
        : Math.min(timing.retryBaseMs * 2 ** (attempts - 1), timing.retryMaxMs);
      const forGood = refusedForGood(err);
      const willRetry = !forGood && Date.now() + delayMs < claimed.expiresAt.getTime();
      log.warn(
        { id, template, to, attempt: attempts, willRetry, err: describe(err) },
        'mail delivery failed',
      );
      if (willRetry) {
        metrics.mailRetries.inc();
        return store.retryLater(claimed, delayMs, errorCode(err));
      }
      return giveUp(forGood ? errorCode(err) : 'expired');
    }
    await store.sent(claimed);
    metrics.mailSent.inc();
    log.info({ id, template, to, messageId, attempts }, 'mail sent');
    // It took more than one try: the server is back, and whatever waits for it can go now.
    if (attempts > 1 && (await store.wakeWaiting()) > 0) again = true;
  }

  async function drain(): Promise<void> {
    do {
      again = false;
      const claimed = await store.claim(BATCH, timing.leaseMs);
      if (unreachable) log.info('mail outbox reachable again');
      unreachable = false;
      await Promise.all(
        claimed.map((c) =>
          attempt(c).catch((err) =>
            // The outcome could not be stored: the claim lapses and the mail is tried again.
            log.error({ id: c.id, error: (err as Error).message }, 'mail outcome not stored'),
          ),
        ),
      );
      if (claimed.length === BATCH) again = true;
    } while (again && !stopping);
  }

  /** Looks at the outbox now (or as soon as the look under way ends). */
  function kick(): void {
    if (stopping) return;
    if (running) {
      again = true;
      return;
    }
    running = drain()
      .catch((err) => {
        again = false;
        // Once per outage: the database is away, and /readyz says so already.
        if (!unreachable) log.warn({ error: (err as Error).message }, 'mail outbox unreachable');
        unreachable = true;
      })
      .finally(() => {
        running = undefined;
        if (again) kick();
      });
  }

  const timer = setInterval(kick, timing.pollMs);
  timer.unref();
  kick();

  return {
    kick,
    /** Claims nothing more; resolves when the sends under way have been reported. */
    async stop(): Promise<void> {
      stopping = true;
      clearInterval(timer);
      await running;
    },
  };
}

export type Drainer = ReturnType<typeof startDrainer>;
