// Loaded only when OTEL_EXPORTER_OTLP_ENDPOINT is set (server/main.ts imports it dynamically):
// without it, not one module of the SDK is loaded and nothing is patched.
import { createRequire } from 'node:module';
import type { IncomingMessage } from 'node:http';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { IORedisInstrumentation } from '@opentelemetry/instrumentation-ioredis';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import { NodeSDK } from '@opentelemetry/sdk-node';
import type { Config } from '../../config/load.ts';
import { trustedPeer } from '../http/client-address.ts';

// W3C Trace Context (traceparent, tracestate) and W3C Baggage: the propagators the SDK reads.
const PROPAGATION_HEADERS = ['traceparent', 'tracestate', 'baggage'] as const;

/**
 * Trace context is believed from the proxies TRUST_PROXY names, as X-Forwarded-For is: from
 * anyone else the headers are dropped before the HTTP instrumentation reads them, and the
 * request starts a trace of its own. Otherwise a client could join its requests to a trace of
 * its choosing, or set the sampled flag on all of them (W3C Trace Context §8.1, "Privacy" and
 * "Security": a service at a trust boundary may restart the trace).
 */
function dropUntrustedContext(trustProxy: readonly string[]) {
  const trusted = trustedPeer(trustProxy);
  // The instrumentation's only hook that sees the request before it extracts the context;
  // it never asks to ignore the request.
  return (req: IncomingMessage): boolean => {
    if (!trusted(req.socket.remoteAddress))
      for (const name of PROPAGATION_HEADERS) delete req.headers[name];
    return false;
  };
}

/**
 * Starts the OpenTelemetry SDK: spans of HTTP requests (server side), PostgreSQL (pg) and Redis
 * (ioredis) queries, sent over OTLP/HTTP (JSON) to OTEL_EXPORTER_OTLP_ENDPOINT in batches. The
 * exporter, the batching and the sampler read the standard OTEL_* variables themselves.
 * Returns the function that flushes and stops it.
 */
export function startTracing(config: Pick<Config, 'tracing' | 'trustProxy'>): () => Promise<void> {
  const sdk = new NodeSDK({
    serviceName: config.tracing.serviceName,
    traceExporter: new OTLPTraceExporter(),
    // Traces only: metrics are Prometheus's (server/metrics/), logs are pino's on stdout.
    metricReaders: [],
    logRecordProcessors: [],
    instrumentations: [
      new HttpInstrumentation({
        ignoreIncomingRequestHook: dropUntrustedContext(config.trustProxy),
        // The exporter's own requests, and any other client call, are not this server's story.
        disableOutgoingRequestInstrumentation: true,
      }),
      // Query text only (knex sends values as parameters), never the values themselves.
      new PgInstrumentation({ enhancedDatabaseReporting: false }),
      // The command's name only: the default keeps the arguments, and the keys here carry
      // session, code and token ids (adapters/redis.ts).
      new IORedisInstrumentation({ dbStatementSerializer: (command) => command }),
    ],
  });
  sdk.start();
  // The instrumentations patch a module when it is require()d. These are CommonJS, and an ESM
  // import of one does not pass through require(), so they are required here, once: what is
  // patched is the modules' shared prototypes (Server.prototype.emit, Client.prototype.query,
  // Redis.prototype.sendCommand), which the server's later imports then use.
  const require = createRequire(import.meta.url);
  for (const name of ['node:http', 'pg', 'ioredis']) require(name);
  return () => sdk.shutdown();
}
