import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

const EMAIL = /([A-Za-z0-9._%+-]{1,2})[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})/g;

/** "alice@example.com" → "al***@example.com": enough to tell accounts apart in a log, no more. */
export function maskEmails(text: string): string {
  return text.replace(EMAIL, '$1***@$2');
}

function maskDeep(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return maskEmails(value);
  if (depth > 4 || value === null || typeof value !== 'object') return value;
  if (value instanceof Error) {
    // Still an Error (same prototype), so pino's serializer keeps its type; the stack repeats
    // the message, so it is masked too.
    const masked = Object.create(Object.getPrototypeOf(value)) as Error & Record<string, unknown>;
    for (const [k, v] of Object.entries(value)) masked[k] = maskDeep(v, depth + 1);
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
  return pino(
    {
      level,
      base: undefined,
      formatters: { log: (object) => maskDeep(object) as Record<string, unknown> },
      hooks: {
        logMethod(args, method) {
          method.apply(
            this,
            args.map((a) => (typeof a === 'string' ? maskEmails(a) : a)) as Parameters<
              typeof method
            >,
          );
        },
      },
    },
    destination,
  );
}
