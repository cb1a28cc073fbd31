import type { RenderedMail } from './render.ts';
import type { MailTemplate } from './templates.ts';

export type OutgoingMail = RenderedMail & { from: string; to: string; template: MailTemplate };

/** How a mail leaves: over SMTP, or into the development outbox. */
export type MailTransport = {
  /** Delivers one message; resolves to its Message-ID, rejects when it could not. */
  deliver(mail: OutgoingMail): Promise<string>;
  /** Resolves when a message could be delivered now; rejects naming the problem. */
  verify(): Promise<void>;
  /** Closes pooled connections; for shutdown. */
  close(): void;
};
