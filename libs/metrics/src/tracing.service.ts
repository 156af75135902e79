import {
  Inject,
  Injectable,
  Logger,
  Optional,
  type OnApplicationShutdown,
  type OnModuleInit,
} from '@nestjs/common';
import {
  context,
  logs,
  propagation,
  SpanKind,
  SpanStatusCode,
  trace,
  INVALID_SPAN_CONTEXT,
  type Attributes,
  type Link,
  type Span,
  type SpanOptions,
  type Tracer,
} from '@opentelemetry/api';
import { NodeSDK } from '@opentelemetry/sdk-node';
import {
  ATTR_DB_NAMESPACE,
  ATTR_DB_OPERATION_NAME,
  ATTR_DB_SYSTEM_NAME,
  ATTR_ERROR_TYPE,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
} from '@opentelemetry/semantic-conventions';
import {
  RedisClientManager,
  setSpanRunner,
  type CommandOutcome,
  type RedisCommandTracer,
  type SpanRunner,
} from '@redwing/redis';
import type { ResolvedMetricsConfig, ResolvedTracing } from './metrics.config';
import { METRICS_CONFIG, TRACER_NAME } from './metrics.constants';

/** A span that records nothing: what `withSpan` hands to `fn` while tracing is off. */
const NOOP_SPAN: Span = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

/**
 * The process-wide tracing state. The OpenTelemetry API is global (one tracer provider, one context
 * manager per process), so every app in the process shares one `NodeSDK`: the first app with tracing on
 * starts it, the last one to close shuts it down.
 */
const runtime: { users: number; sdk?: NodeSDK; stopping?: Promise<void> } = { users: 0 };

/** Whether any app in this process has tracing on; `withSpan` is a plain call otherwise. */
export function isTracingActive(): boolean {
  return runtime.users > 0;
}

function tracer(): Tracer {
  return trace.getTracer(TRACER_NAME);
}

/**
 * How `withSpan` opens its span (the options of `runInSpan` in `@redwing/redis`): `links` (W3C
 * `traceparent`s of the spans this one is linked to), `root` (a new trace rather than a child of the active
 * span), `kind` (`internal`, `producer`, `consumer`).
 */
export type WithSpanOptions = NonNullable<Parameters<SpanRunner>[3]>;

const KINDS = { internal: SpanKind.INTERNAL, producer: SpanKind.PRODUCER, consumer: SpanKind.CONSUMER };

/** `00-<trace id>-<span id>-<flags>` (version 00; a later version's extra fields are ignored, per W3C). */
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-|$)/;

/** The span context of a W3C `traceparent` (a remote one), or `undefined` when it is not a valid one. */
function linkOf(traceparent: string): Link | undefined {
  const m = TRACEPARENT.exec(traceparent);
  if (!m || m[1] === 'ff') return undefined;
  const ctx = { traceId: m[2], spanId: m[3], traceFlags: parseInt(m[4], 16) & 0xff, isRemote: true };
  return trace.isSpanContextValid(ctx) ? { context: ctx } : undefined;
}

/** OpenTelemetry span options for `withSpan`'s attributes and options. */
function spanOptions(attributes: Attributes | undefined, options: WithSpanOptions | undefined): SpanOptions {
  const o: SpanOptions = { attributes: attributes ?? {} };
  if (!options) return o;
  if (options.kind) o.kind = KINDS[options.kind];
  if (options.root) o.root = true;
  if (options.links?.length) {
    const links: Link[] = [];
    for (const tp of options.links) {
      const link = typeof tp === 'string' ? linkOf(tp) : undefined;
      if (link) links.push(link);
    }
    if (links.length) o.links = links;
  }
  return o;
}

/**
 * Runs `fn` inside a new active span named `name` (a child of the active span, if any, unless
 * `options.root`) and ends the span when `fn` returns or its promise settles; a throw or rejection is
 * recorded on the span and re-thrown. `options.links` links it to other spans by their W3C `traceparent`
 * (the publish of a message this span delivers). While tracing is off this is a plain call of `fn` with a
 * span that records nothing, and `options` is not even read.
 *
 * Libs use it for the spans of their own work (the cache lookup, the rate-limit decision), so those
 * nest under the request span and above the Redis command spans.
 * @example
 * return withSpan('cache.lookup', { 'redwing.cache.profile': profile }, async (span) => {
 *   const hit = await this.l2.get(key);
 *   span.setAttribute('redwing.cache.result', hit ? 'hit' : 'miss');
 *   return hit;
 * });
 */
export function withSpan<T>(
  name: string,
  attributes: Attributes | undefined,
  fn: (span: Span) => T,
  options?: WithSpanOptions,
): T {
  if (runtime.users === 0) return fn(NOOP_SPAN);
  return tracer().startActiveSpan(name, spanOptions(attributes, options), (span) => {
    let result: T;
    try {
      result = fn(span);
    } catch (err) {
      recordError(span, err);
      span.end();
      throw err;
    }
    if (isPromiseLike(result)) {
      return result.then(
        (value) => {
          span.end();
          return value;
        },
        (err: unknown) => {
          recordError(span, err);
          span.end();
          throw err;
        },
      ) as T;
    }
    span.end();
    return result;
  });
}

/** Marks a span as failed with `err` (exception event, `error.type`, status ERROR). */
export function recordError(span: Span, err: unknown): void {
  const e = err instanceof Error ? err : new Error(String(err));
  span.recordException(e);
  span.setAttribute(ATTR_ERROR_TYPE, e.name || 'Error');
  span.setStatus({ code: SpanStatusCode.ERROR, message: e.message });
}

function isPromiseLike<T>(value: unknown): value is PromiseLike<T> {
  return (
    typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function'
  );
}

/**
 * OpenTelemetry tracing from inside Nest. `MetricsModule` starts the SDK (configured by the standard
 * `OTEL_*` variables) when tracing is on, opens the request spans, and — through
 * `RedisClientManager.events.setTracer` — a child span per Redis command sent while a span is active.
 * Inject it (`@Optional()`) to add spans or attributes of your own.
 */
@Injectable()
export class TracingService implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('Tracing');
  private readonly tracing: ResolvedTracing | null;
  private leased = false;
  private installedTracer?: RedisCommandTracer;

  constructor(
    @Inject(METRICS_CONFIG) private readonly config: ResolvedMetricsConfig,
    @Optional() private readonly redis?: RedisClientManager,
  ) {
    this.tracing = config.tracing;
    if (this.tracing) this.acquire(this.tracing);
  }

  /** Whether this app traces (tracing on in its configuration). */
  get enabled(): boolean {
    return this.leased;
  }

  /** See {@link withSpan}. */
  withSpan<T>(
    name: string,
    attributes: Attributes | undefined,
    fn: (span: Span) => T,
    options?: WithSpanOptions,
  ): T {
    return withSpan(name, attributes, fn, options);
  }

  /** The active span (the request's, inside a request), or `undefined`. */
  activeSpan(): Span | undefined {
    return this.leased ? trace.getActiveSpan() : undefined;
  }

  /** Export every finished span now (tests, and before a process exits on purpose). */
  async flush(): Promise<void> {
    const provider = trace.getTracerProvider() as {
      getDelegate?: () => { forceFlush?: () => Promise<void> };
    };
    await provider.getDelegate?.().forceFlush?.();
  }

  onModuleInit(): void {
    if (!this.leased || !this.tracing?.redisCommands || !this.redis) return;
    this.installedTracer = createRedisTracer(this.redis);
    this.redis.events.setTracer(this.installedTracer);
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.redis && this.installedTracer && this.redis.events.tracer === this.installedTracer) {
      this.redis.events.setTracer(null);
    }
    if (!this.leased) return;
    this.leased = false;
    runtime.users--;
    if (runtime.users === 0) setSpanRunner(null);
    if (runtime.users > 0 || !runtime.sdk) return;
    const sdk = runtime.sdk;
    runtime.sdk = undefined;
    runtime.stopping = (async () => {
      try {
        await sdk.shutdown();
      } catch (err) {
        this.logger.warn(`OpenTelemetry SDK did not shut down cleanly: ${(err as Error).message}`);
      } finally {
        // Unregister the globals so a later app in this process can start its own SDK.
        trace.disable();
        context.disable();
        propagation.disable();
        logs.disable();
      }
    })();
    await runtime.stopping;
  }

  private acquire(tracing: ResolvedTracing): void {
    runtime.users++;
    this.leased = true;
    // Libs' own spans (`runInSpan` in @redwing/redis) go through `withSpan` while any app traces.
    setSpanRunner(withSpan);
    if (!tracing.startSdk || runtime.sdk) return;
    const sdk = new NodeSDK({
      serviceName: this.config.serviceName,
      // Metrics are Prometheus (prom-client) and logs stay with Nest: no OTLP metrics or logs pipelines.
      metricReaders: [],
      logRecordProcessors: [],
      ...(tracing.spanProcessors ? { spanProcessors: tracing.spanProcessors } : {}),
    });
    sdk.start();
    runtime.sdk = sdk;
    this.logger.log(`OpenTelemetry tracing on (${tracing.reason}); service.name=${this.config.serviceName}`);
  }
}

/** Attributes of a client's spans: where it connects (never credentials). */
function clientAttributes(redis: RedisClientManager, name: string): Attributes {
  const client = redis.get(name);
  const attrs: Attributes = { [ATTR_DB_SYSTEM_NAME]: 'redis', 'redwing.redis.client': name };
  const opts = client.config.redisOptions;
  if (client.topology === 'standalone') {
    if (opts.host) attrs[ATTR_SERVER_ADDRESS] = opts.host;
    if (opts.port) attrs[ATTR_SERVER_PORT] = opts.port;
    attrs[ATTR_DB_NAMESPACE] = String(opts.db ?? 0);
  }
  return attrs;
}

/**
 * The `@redwing/redis` command tracer: a CLIENT span per command sent while a recording span is active
 * (a request, or a lib's `withSpan`). Commands with no active span — health PINGs, background flushes —
 * are not traced, so they never start traces of their own. Keys and arguments are never recorded.
 */
export function createRedisTracer(redis: RedisClientManager): RedisCommandTracer {
  const byClient = new Map<string, Attributes>();
  return {
    start(client: string, command: string): unknown {
      const parent = trace.getActiveSpan();
      if (!parent || !parent.isRecording()) return undefined;
      let base = byClient.get(client);
      if (!base) {
        base = clientAttributes(redis, client);
        byClient.set(client, base);
      }
      const operation = command.toUpperCase();
      return tracer().startSpan(operation, {
        kind: SpanKind.CLIENT,
        attributes: { ...base, [ATTR_DB_OPERATION_NAME]: operation },
      });
    },
    end(handle: unknown, outcome: CommandOutcome, error?: Error): void {
      const span = handle as Span | undefined;
      if (!span) return;
      if (outcome !== 'ok') {
        span.setAttribute('redwing.redis.outcome', outcome);
        span.setAttribute(ATTR_ERROR_TYPE, error?.name ?? outcome);
        span.setStatus({ code: SpanStatusCode.ERROR, message: outcome });
      }
      span.end();
    },
  };
}
