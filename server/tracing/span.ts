import { SpanStatusCode, trace, type Attributes } from '@opentelemetry/api';

// The API alone: without the SDK (no OTEL_EXPORTER_OTLP_ENDPOINT) every span is a no-op, a
// call and a closure, so the code that makes spans does not ask whether tracing is on.
const tracer = trace.getTracer('latchkey');

/** Runs `work` in a span of its own (the active one, so spans it starts are its children). */
export function inSpan<T>(
  name: string,
  attributes: Attributes,
  work: () => Promise<T>,
): Promise<T> {
  return tracer.startActiveSpan(name, { attributes }, async (span) => {
    try {
      return await work();
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error)?.name });
      throw err;
    } finally {
      span.end();
    }
  });
}

/** Starts a span that the caller ends (where the work is not one function: a generator). */
export const startSpan = (name: string, attributes: Attributes) =>
  tracer.startSpan(name, { attributes });

/** The trace id of the span now active, for the log line; nothing when no span records. */
export function traceFields(): { traceId?: string } {
  const context = trace.getActiveSpan()?.spanContext();
  return context && trace.isSpanContextValid(context) ? { traceId: context.traceId } : {};
}
