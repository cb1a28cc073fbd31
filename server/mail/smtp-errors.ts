// How a failed delivery is judged and told: RFC 5321 §4.2.1 makes a 5yz reply permanent (the
// same request would get it again) and a 4yz one transient; nodemailer marks the former
// `permanent`. Connection failures carry no reply code and are transient.

type SmtpError = Error & { code?: string; responseCode?: number; permanent?: boolean };

/** False for a 5xx reply, such as a refused login or recipient: it would come again. */
export function retryable(err: unknown): boolean {
  return (err as SmtpError).permanent !== true;
}

/**
 * A 5xx reply about this message, such as an unknown recipient. A refused login (EAUTH) is about
 * the server's settings, not the mail: mail kept in the outbox waits for them to be put right.
 */
export function refusedForGood(err: unknown): boolean {
  const { permanent, code } = err as SmtpError;
  return permanent === true && code !== 'EAUTH';
}

/** What a log line may say about a delivery error: never the message itself. */
export function describe(err: unknown) {
  const { message, code, responseCode } = err as SmtpError;
  return { message, code, responseCode };
}

/** What may be stored with a mail: the codes alone (the text may name the recipient). */
export function errorCode(err: unknown): string {
  const { code, responseCode } = err as SmtpError;
  return [code, responseCode].filter(Boolean).join(' ') || 'error';
}
