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
 * For mail sent after the answer (sendInBackground): nobody waits, so it keeps trying for
 * about four minutes (1 s, 2 s … 128 s apart), riding out an SMTP server restart.
 */
export const BACKGROUND_MAIL_RETRY: RetryOptions = { attempts: 9, baseDelayMs: 1000 };

export type MailMessage<T extends MailTemplate> = {
  to: string;
  template: T;
  data: MailTemplates[T];
};

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
  const background = options.backgroundRetry ?? BACKGROUND_MAIL_RETRY;

  async function deliver<T extends MailTemplate>(
    { to, template, data }: MailMessage<T>,
    retry: RetryOptions,
  ): Promise<SendResult> {
    const mail = { ...renderer.render(template, data), from: options.from, to, template };
    try {
      const messageId = await retryWithBackoff(() => transport.deliver(mail), retry, {
        retryable,
        onFailure(err, attempt, willRetry) {
          log.warn(
            { template, to, attempt, willRetry, err: describe(err) },
            'mail delivery failed',
          );
        },
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
     * Delivers without holding up the caller's answer (a notice the request must not wait for,
     * nor reveal by its timing), with the longer background retries; failures are logged.
     */
    sendInBackground<T extends MailTemplate>(message: MailMessage<T>): void {
      deliver(message, background).catch((err: unknown) =>
        log.error({ template: message.template, err }, 'background mail failed'),
      );
    },
    /** Resolves when mail can go out now (SMTP server reachable and login accepted); for /readyz. */
    verify: () => transport.verify(),
    /** Closes pooled SMTP connections; call on shutdown. */
    close: () => transport.close(),
  };
}

export type Mailer = ReturnType<typeof createMailer>;
