import { pino, type Logger, type DestinationStream } from 'pino';
import { traceFields } from './tracing/span.ts';

export type { Logger };

// The sign-up form takes any something@domain.tld (server/users/email-address.ts), so the
// mask takes as much: a local part of any characters but whitespace and the delimiters around an
// address in text, JSON, a URL or a header. (RFC 6531 allows UTF-8 local parts; an ASCII-only
// pattern left "zoë@example.com" whole and "José.García@…" all but whole.) "/", "?", "=", "&"
// and "#" end a local part, so "?email=alice@…" keeps its "?email=". A match starts only where a
// run of local-part characters starts, which keeps the scan linear in the length of the line.
const LOCAL_CHAR = String.raw`[^\s@<>()[\]\\,;:"/?=&#]`;
const DOMAIN_CHAR = String.raw`[^\s@<>()[\]\\,;:"'/?=&#%]`;
// "@" as is or URL-encoded (a query string, a form body); a domain name or an address literal.
const AT = '(@|%40)';
const DOMAIN = String.raw`(${DOMAIN_CHAR}+\.${DOMAIN_CHAR}+|\[[^\]\s]+\])`;
const EMAIL = new RegExp(
  `(?<!${LOCAL_CHAR})(${LOCAL_CHAR}{1,2})${LOCAL_CHAR}*?${AT}${DOMAIN}`,
  'gu',
);
// Deeper than this a value is replaced, not copied: a log line never carries an unmasked remainder.
const MAX_DEPTH = 4;
// What a database error may carry of the statement: PGlite's errors hold its bound values, which
// can be tokens, codes or session ids (the message and SQLSTATE say what went wrong).
const STATEMENT_FIELDS = new Set(['params', 'parameters', 'bindings', 'where']);

/** "alice@example.com" → "al***@example.com": enough to tell accounts apart in a log, no more. */
export function maskEmails(text: string): string {
  return text.replace(EMAIL, '$1***$2$3');
}

function maskDeep(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return maskEmails(value);
  if (value === null || typeof value !== 'object') return value;
  if (depth > MAX_DEPTH) return '[too deep to log]';
  if (value instanceof Error) {
    // Still an Error (same prototype), so pino's serializer keeps its type; the stack repeats
    // the message, so it is masked too.
    const masked = Object.create(Object.getPrototypeOf(value)) as Error & Record<string, unknown>;
    for (const [k, v] of Object.entries(value))
      if (!STATEMENT_FIELDS.has(k)) masked[k] = maskDeep(v, depth + 1);
    masked.message = maskEmails(value.message);
    if (value.stack) masked.stack = maskEmails(value.stack);
    if (value.cause !== undefined) masked.cause = maskDeep(value.cause, depth + 1);
    return masked;
  }
  if (Array.isArray(value)) return value.map((v) => maskDeep(v, depth + 1));
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, maskDeep(v, depth + 1)]));
}

/** JSON logs with emails masked in every field and message; never log passwords or tokens. */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const log = pino(
    {
      level,
      base: undefined,
      // The trace id beside the request id: one search finds a request's lines and its spans.
      mixin: traceFields,
      formatters: { log: (object) => maskDeep(object) as Record<string, unknown> },
      hooks: {
        // The message, and values interpolated into it ("%s", "%o", "%j"): all masked.
        logMethod(args, method) {
          method.apply(this, args.map((a) => maskDeep(a)) as Parameters<typeof method>);
        },
      },
    },
    destination,
  );
  // A child's fields (log.child({ ... })) go on every line it writes, and pino applies
  // formatters.bindings to the root only. Children inherit this child(), so theirs are masked too.
  const child = log.child;
  log.child = function (this: Logger, bindings, options) {
    return child.call(this, maskDeep(bindings) as typeof bindings, options);
  } as typeof child;
  return log;
}
