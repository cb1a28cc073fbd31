import type { Transporter } from 'nodemailer';
import type { Logger } from '../log.ts';
import { inSpan } from '../tracing/span.ts';
import type { MailTransport } from './transport.ts';

export type SmtpOptions = {
  host: string;
  port: number;
  /**
   * tls: implicit TLS from the first byte (usually port 465). starttls: connect in plain text,
   * then upgrade, refusing a server that does not offer STARTTLS (usually 587). none: no TLS at
   * all, for development and tests only.
   */
  secure: 'tls' | 'starttls' | 'none';
  user?: string | undefined;
  password?: string | undefined;
  /** Keep connections open and reuse them (nodemailer's pool: up to 5, 100 messages each). */
  pool: boolean;
};

// A send runs inside the user's request and may be retried: nodemailer's defaults (2 minutes
// to connect, 30 s for the greeting, 10 minutes of silence) would hold that request for minutes
// when the server is unreachable or stalls.
const CONNECTION_TIMEOUT_MS = 10_000;
const GREETING_TIMEOUT_MS = 10_000;
const SOCKET_TIMEOUT_MS = 30_000;

const TLS_MODES = {
  tls: { secure: true },
  starttls: { secure: false, requireTLS: true },
  none: { secure: false, ignoreTLS: true },
} as const;

/** Delivers over SMTP with nodemailer. */
export function createSmtpTransport(smtp: SmtpOptions, log: Logger): MailTransport {
  const options = {
    host: smtp.host,
    port: smtp.port,
    ...TLS_MODES[smtp.secure],
    auth: smtp.user ? { user: smtp.user, pass: smtp.password ?? '' } : undefined,
    connectionTimeout: CONNECTION_TIMEOUT_MS,
    greetingTimeout: GREETING_TIMEOUT_MS,
    socketTimeout: SOCKET_TIMEOUT_MS,
  };
  // nodemailer (~3 MiB of heap) is loaded by the first message: many servers send none for hours.
  let transporter: Promise<Transporter> | undefined;
  let closed = false;
  const transporterOf = () => {
    // Closed before its first message: one made now (a pool's connection) nothing would close.
    if (closed) return Promise.reject(new Error('the mail transport is closed'));
    return (transporter ??= import('nodemailer').then(({ default: nodemailer }) => {
      const made = smtp.pool
        ? nodemailer.createTransport({ ...options, pool: true })
        : nodemailer.createTransport(options);
      // An 'error' event nobody listens to would end the process; a failed send rejects anyway.
      made.on('error', (err) => log.error({ err }, 'mail transport error'));
      return made;
    }));
  };

  return {
    async deliver({ from, to, subject, text, html }) {
      // The server, not the recipient: an address is personal data, and no span carries one.
      const info = await inSpan(
        'smtp.send',
        { 'server.address': smtp.host, 'server.port': smtp.port },
        async () => (await transporterOf()).sendMail({ from, to, subject, text, html }),
      );
      return info.messageId;
    },
    async verify() {
      await (await transporterOf()).verify();
    },
    close() {
      closed = true;
      void transporter?.then(
        (made) => made.close(),
        () => undefined,
      );
    },
  };
}
