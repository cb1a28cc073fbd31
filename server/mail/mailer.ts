import type { Logger } from '../log.ts';
import { createOutboxTransport } from './outbox-transport.ts';
import { createMailRenderer } from './render.ts';
import { retryWithBackoff, type RetryOptions } from './retry.ts';
import { createSmtpTransport, type SmtpOptions } from './smtp-transport.ts';
import type { MailTemplate, MailTemplates } from './templates.ts';

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
  backgroundRetry?: RetryOptions | undefined;
};

/**
 * Three attempts, 500 ms then 1 s apart: rides out a dropped pooled connection, an SMTP server
 * restart or a 4xx "try again later" while adding at most 1.5 s of waiting to the user's
 * request. A longer outage is for the user's "resend", not for a request held open.
 */
export const DEFAULT_MAIL_RETRY: RetryOptions = { attempts: 3, baseDelayMs: 500 };

/**
 * Mail sent in the background: 9 attempts over about four minutes (1 s, 2 s … 128 s apart).
 * Nobody waits for it, so it can ride out an SMTP server restart the user would otherwise have
 * to notice and retry.
 */
export const BACKGROUND_MAIL_RETRY: RetryOptions = { attempts: 9, baseDelayMs: 1000 };

/** At shutdown, how long mail still being sent in the background may take before it is given up. */
const BACKGROUND_GRACE_MS = 5000;

export type MailMessage<T extends MailTemplate> = {
  to: string;
  template: T;
  data: MailTemplates[T];
};

/** Any one mail, its data matching its template. */
export type AnyMailMessage = { [T in MailTemplate]: MailMessage<T> }[MailTemplate];

export type SendResult = { sent: true; messageId: string } | { sent: false; error: string };

export type MailerDeps = { log: Logger };

type SmtpError = Error & { code?: string; responseCode?: number; permanent?: boolean };

/** A 5xx reply (RFC 5321 §4.2.1), such as a refused login or recipient, would come again. */
function retryable(err: unknown): boolean {
  return (err as SmtpError).permanent !== true;
}

/** What a log line may say about a delivery error: never the message itself. */
function describe(err: unknown) {
  const { message, code, responseCode } = err as SmtpError;
  return { message, code, responseCode };
}

/** Renders mails from views/mail/ and delivers them over SMTP or into the development outbox. */
export function createMailer(options: MailOptions, { log }: MailerDeps) {
  const renderer = createMailRenderer(options.productName);
  const transport =
    options.transport === 'smtp'
      ? createSmtpTransport(options.smtp, log)
      : createOutboxTransport(options.outboxDir, log);
  const retry = options.retry ?? DEFAULT_MAIL_RETRY;
  const backgroundRetry = options.backgroundRetry ?? BACKGROUND_MAIL_RETRY;
  const pending = new Set<Promise<unknown>>();
  const stopping = new AbortController();

  async function deliver<T extends MailTemplate>(
    { to, template, data }: MailMessage<T>,
    schedule: RetryOptions,
  ): Promise<SendResult> {
    const mail = { ...renderer.render(template, data), from: options.from, to, template };
    try {
      const messageId = await retryWithBackoff(() => transport.deliver(mail), schedule, {
        retryable,
        onFailure(err, attempt, willRetry) {
          log.warn(
            { template, to, attempt, willRetry, err: describe(err) },
            'mail delivery failed',
          );
        },
        signal: stopping.signal,
      });
      log.info({ template, to, messageId }, 'mail sent');
      return { sent: true, messageId };
    } catch (err) {
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
    send: <T extends MailTemplate>(message: MailMessage<T>) => deliver(message, retry),
    /**
     * Sends without anyone waiting: for mail whose sending must not show in how long a response
     * takes (which of two mails went out, or whether one did), or that nobody should wait for.
     * `prepare` runs in the background too (its database work included) and says what to send,
     * if anything. Failures are logged, never thrown. A failed `prepare` (the database away) is
     * tried again on the background schedule: the user has been told the mail is on its way.
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
        .then(
          (message) => message && deliver(message as MailMessage<MailTemplate>, backgroundRetry),
        )
        .catch((err) => log.error({ err }, 'background mail failed'))
        .finally(() => pending.delete(job));
      pending.add(job);
    },
    /** Resolves when mail can go out now (SMTP server reachable and login accepted); for /readyz. */
    verify: () => transport.verify(),
    /**
     * On shutdown: lets background mail finish for up to `graceMs` (then stops retrying it, each
     * unsent one logged), and closes pooled SMTP connections.
     */
    async close(graceMs = BACKGROUND_GRACE_MS): Promise<void> {
      if (pending.size > 0) {
        let timer: NodeJS.Timeout | undefined;
        const grace = new Promise((resolve) => (timer = setTimeout(resolve, graceMs)));
        await Promise.race([Promise.allSettled([...pending]), grace]);
        clearTimeout(timer);
        stopping.abort();
        await Promise.allSettled([...pending]);
      }
      transport.close();
    },
  };
}

export type Mailer = ReturnType<typeof createMailer>;
