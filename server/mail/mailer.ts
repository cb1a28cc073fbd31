import type { Db } from '../db.ts';
import type { Logger } from '../log.ts';
import { DEFAULT_OUTBOX_TIMING, startDrainer, type Drainer, type OutboxTiming } from './drainer.ts';
import { createOutboxStore } from './outbox-store.ts';
import { createOutboxTransport } from './outbox-transport.ts';
import { createMailRenderer } from './render.ts';
import { retryWithBackoff, type RetryOptions } from './retry.ts';
import { describe, retryable } from './smtp-errors.ts';
import { createSmtpTransport, type SmtpOptions } from './smtp-transport.ts';
import type { MailTemplate, MailTemplates } from './templates.ts';
import { NO_METRICS, type Metrics } from '../metrics/metrics.ts';

export type MailOptions = {
  /** smtp: deliver through `smtp`. outbox: write .eml files into `outboxDir` (development). */
  transport: 'smtp' | 'outbox';
  smtp: SmtpOptions;
  /** The From header, e.g. `Latchkey <no-reply@example.com>`. */
  from: string;
  /** Named in every subject and body. */
  productName: string;
  outboxDir: string;
  retry?: RetryOptions | undefined;
  /** Preparing background mail and storing it in the outbox (the database may be away). */
  backgroundRetry?: RetryOptions | undefined;
  outbox?: OutboxTiming | undefined;
};

/**
 * Three attempts, 500 ms then 1 s apart: rides out a dropped pooled connection, an SMTP server
 * restart or a 4xx "try again later" while adding at most 1.5 s of waiting to the user's
 * request. A longer outage is for the user's "resend", not for a request held open.
 */
export const DEFAULT_MAIL_RETRY: RetryOptions = { attempts: 3, baseDelayMs: 500 };

/**
 * Background mail until it is in the outbox: 9 attempts over about four minutes (1 s, 2 s …
 * 128 s apart) to prepare it and store it, riding out a database restart. From the outbox on,
 * its delivery is retried there (server/mail/drainer.ts), across restarts.
 */
export const BACKGROUND_MAIL_RETRY: RetryOptions = { attempts: 9, baseDelayMs: 1000 };

/**
 * At shutdown, how long background mail may take to be prepared and stored, and sends under way
 * to end. Mail stored is the next process's to send; a send cut short is tried again once its
 * claim lapses.
 */
const BACKGROUND_GRACE_MS = 5000;

export type MailMessage<T extends MailTemplate> = {
  to: string;
  template: T;
  data: MailTemplates[T];
};

/** Any one mail, its data matching its template. */
export type AnyMailMessage = { [T in MailTemplate]: MailMessage<T> }[MailTemplate];

export type SendResult = { sent: true; messageId: string } | { sent: false; error: string };

/** Background mail is kept in the database, sealed with this key, until it is sent. */
export type MailerDeps = { log: Logger; db: Db; sealingKey: Buffer; metrics?: Metrics | undefined };

const UNITS_MS = { expiresInMinutes: 60_000, expiresInHours: 3_600_000, expiresInDays: 86_400_000 };

/**
 * When the last link in the mail stops working (the data gives its lifetime rounded to a whole
 * unit, so it may be up to half a unit more), and never later than `maxAgeMs`: a mail that can
 * only arrive after that is not sent.
 */
function deliverBy(data: object, maxAgeMs: number): Date {
  let lifetime = maxAgeMs;
  for (const [key, unit] of Object.entries(UNITS_MS)) {
    const value = (data as Record<string, unknown>)[key];
    if (typeof value === 'number') lifetime = Math.min(lifetime, (value + 0.5) * unit);
  }
  return new Date(Date.now() + lifetime);
}

/** Renders mails from views/mail/ and delivers them over SMTP or into the development outbox. */
export function createMailer(
  options: MailOptions,
  { log, db, sealingKey, metrics = NO_METRICS }: MailerDeps,
) {
  const renderer = createMailRenderer(options.productName);
  const transport =
    options.transport === 'smtp'
      ? createSmtpTransport(options.smtp, log)
      : createOutboxTransport(options.outboxDir, log);
  const retry = options.retry ?? DEFAULT_MAIL_RETRY;
  const backgroundRetry = options.backgroundRetry ?? BACKGROUND_MAIL_RETRY;
  const timing = options.outbox ?? DEFAULT_OUTBOX_TIMING;
  const store = createOutboxStore(db, sealingKey);
  metrics.onScrape(async () => {
    const { pending, failed } = await store.depth();
    metrics.mailQueue.set({ status: 'pending' }, pending);
    metrics.mailQueue.set({ status: 'failed' }, failed);
  });
  let drainer: Drainer | undefined;
  const pending = new Set<Promise<unknown>>();
  const stopping = new AbortController();

  const outgoing = <T extends MailTemplate>({ to, template, data }: MailMessage<T>) => ({
    ...renderer.render(template, data),
    from: options.from,
    to,
    template,
  });

  /** Stores a background mail for the drainer: tried again while the database is away. */
  async function enqueue<T extends MailTemplate>(message: MailMessage<T>): Promise<void> {
    const mail = outgoing(message);
    const id = await retryWithBackoff(
      () => store.add(mail, deliverBy(message.data, timing.maxAgeMs)),
      backgroundRetry,
      {
        retryable: () => true,
        onFailure(err, attempt, willRetry) {
          log.warn({ err, attempt, willRetry }, 'background mail not stored');
        },
        signal: stopping.signal,
      },
    );
    log.debug({ id, template: message.template }, 'mail stored in the outbox');
    drainer?.kick();
  }

  async function deliver<T extends MailTemplate>(message: MailMessage<T>): Promise<SendResult> {
    const { to, template } = message;
    const mail = outgoing(message);
    try {
      const messageId = await retryWithBackoff(() => transport.deliver(mail), retry, {
        retryable,
        onFailure(err, attempt, willRetry) {
          if (willRetry) metrics.mailRetries.inc();
          log.warn(
            { template, to, attempt, willRetry, err: describe(err) },
            'mail delivery failed',
          );
        },
        signal: stopping.signal,
      });
      metrics.mailSent.inc();
      log.info({ template, to, messageId }, 'mail sent');
      return { sent: true, messageId };
    } catch (err) {
      metrics.mailFailed.inc();
      log.error({ template, to, err: describe(err) }, 'mail not sent');
      return { sent: false, error: (err as Error).message };
    }
  }

  return {
    /**
     * Renders and delivers one mail, retrying transient failures with backoff. Never rejects for
     * a delivery failure: resolves `{ sent: false }` so the caller can keep the user's action
     * and offer "resend". (It does reject for a programming error: bad template data.)
     */
    send: deliver,
    /**
     * Sends without anyone waiting: for mail whose sending must not show in how long a response
     * takes (which of two mails went out, or whether one did), or that nobody should wait for.
     * `prepare` runs in the background too (its database work included) and says what to send,
     * if anything; the mail is then stored in the outbox, sealed, and sent from there by this
     * process or another, retried until the SMTP server takes it. A failed `prepare` or store
     * (the database away) is tried again on the background schedule: the user has been told the
     * mail is on its way. Failures are logged, never thrown.
     */
    sendInBackground(prepare: () => Promise<AnyMailMessage | undefined>): void {
      const job: Promise<unknown> = Promise.resolve()
        .then(() =>
          retryWithBackoff(prepare, backgroundRetry, {
            retryable: () => true,
            onFailure(err, attempt, willRetry) {
              log.warn({ err, attempt, willRetry }, 'background mail not prepared');
            },
            signal: stopping.signal,
          }),
        )
        .then((message) => message && enqueue(message as MailMessage<MailTemplate>))
        .catch((err) => log.error({ err }, 'background mail failed'))
        .finally(() => pending.delete(job));
      pending.add(job);
    },
    /** Starts sending what the outbox holds (a server process; the CLI leaves it to one). */
    start(): void {
      drainer ??= startDrainer({ store, transport, log, timing, metrics });
    },
    /** Resolves when mail can go out now (SMTP server reachable and login accepted); for /readyz. */
    verify: () => transport.verify(),
    /**
     * On shutdown: claims no more mail; lets background mail be prepared and stored, and sends
     * under way end, for up to `graceMs` in all; then closes pooled SMTP connections. What is
     * left in the outbox is sent by the next process.
     */
    async close(graceMs = BACKGROUND_GRACE_MS): Promise<void> {
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise((resolve) => (timer = setTimeout(resolve, graceMs)));
      const stopped = Promise.allSettled([...pending, drainer?.stop()]);
      await Promise.race([stopped, grace]);
      clearTimeout(timer);
      stopping.abort();
      await Promise.allSettled([...pending]);
      transport.close();
    },
  };
}

export type Mailer = ReturnType<typeof createMailer>;
