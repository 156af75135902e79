import type { NodeOptions } from '@sentry/node';
import type { NodeSDKConfiguration } from '@opentelemetry/sdk-node';

/** HTTP RED metrics (rate, errors, duration) and the request span. */
export interface HttpMetricsOptions {
  /** Upper bounds of the request-duration histogram, in seconds. @default 5 ms … 10 s */
  buckets?: number[];
  /**
   * Most distinct route templates kept as label values; further routes are counted as `other`. Route
   * labels are always templates (`/boards/:id`), never raw paths. @default 200
   */
  maxRoutes?: number;
}

/** Metrics of the `@redwing/redis` clients, fed by `RedisClientManager.events`. */
export interface RedisMetricsOptions {
  /** Upper bounds of the command-latency histogram, in seconds. @default 0.1 ms … 1 s */
  buckets?: number[];
  /** Most distinct command names per client kept as label values; the rest are `other`. @default 64 */
  maxCommands?: number;
  /** How old the `INFO memory` sample behind `redwing_redis_memory_used_bytes` may be, in ms. @default 5_000 */
  memoryRefreshInterval?: number;
}

/**
 * OpenTelemetry tracing. Off unless `enabled` is true or the standard variables ask for it
 * (`OTEL_TRACES_EXPORTER` other than `none`, or `OTEL_EXPORTER_OTLP_ENDPOINT`/`…_TRACES_ENDPOINT`).
 * The exporter itself is configured by the standard `OTEL_*` variables, read by `@opentelemetry/sdk-node`.
 */
export interface TracingOptions {
  /** @default from the environment (see above) */
  enabled?: boolean;
  /**
   * Start an `@opentelemetry/sdk-node` `NodeSDK` (one per process, shared by every app in it). `false`
   * when the process already registers its own tracer provider: spans then go to that one.
   * @default true
   */
  startSdk?: boolean;
  /** Span processors to use instead of the exporter chosen by `OTEL_TRACES_EXPORTER`. */
  spanProcessors?: NodeSDKConfiguration['spanProcessors'];
  /** A child span per Redis command sent while a span is active. @default true */
  redisCommands?: boolean;
}

/** Sentry error reporting (`@sentry/node`). On when a DSN is given or `SENTRY_DSN` is set. */
export interface SentryOptions {
  /** @default `SENTRY_DSN` */
  dsn?: string;
  /** @default `SENTRY_ENVIRONMENT`, else `NODE_ENV` */
  environment?: string;
  /** @default `SENTRY_RELEASE` */
  release?: string;
  /**
   * Further `Sentry.init` options, passed through. Tracing options are ignored: spans belong to
   * OpenTelemetry, so that nothing is reported twice.
   */
  init?: Omit<NodeOptions, 'dsn' | 'environment' | 'release' | 'tracesSampleRate' | 'tracesSampler'>;
}

/** A series sampled from a counter of the registry (typically registered by another lib). */
export interface SeriesCounterSource {
  /** Metric name, e.g. `redwing_cache_hits_total`. */
  metric: string;
  /** Only values whose labels include these. */
  labels?: Record<string, string>;
}

/** Cluster-wide per-minute series in Redis, aggregated over every instance of the service. */
export interface SeriesOptions {
  /** @default true when `RedisClientModule` is present (`METRICS_SERIES_ENABLED`) */
  enabled?: boolean;
  /** Redis client (name in `RedisClientModule`) that stores the buckets. @default 'default' */
  client?: string;
  /** How long a minute bucket is kept, in ms (`METRICS_SERIES_RETENTION`). @default 86_400_000 (24 h) */
  retention?: number;
  /** How often the local buffer is written to Redis, in ms (`METRICS_SERIES_FLUSH_INTERVAL`). @default 5_000 */
  flushInterval?: number;
  /** Minutes of counts kept locally while Redis is unavailable; older ones are dropped (counted). @default 5 */
  maxBufferedMinutes?: number;
  /**
   * Series sampled from counters of the registry at every flush (the increase since the last flush).
   * Merged over the defaults: `cache_hits`, `cache_misses`, `cache_stale` (from `redwing_cache_*_total`),
   * `limiter_rejections` and `limiter_shadowed` (`redwing_ratelimit_decisions_total{result}`).
   */
  counters?: Record<string, string | SeriesCounterSource>;
  /** Route templates not counted in `requests` (e.g. the dashboard's own polling). @default ['/metrics'] */
  ignoreRoutes?: string[];
}

/** Options of `MetricsModule.forRoot()`. Every duration is in milliseconds. */
export interface MetricsModuleOptions {
  /**
   * Name of the service: `service.name` of spans, Sentry's `server_name`, the key scope of the series.
   * 1–64 of `A-Z a-z 0-9 _ . -`. Required here or in `OTEL_SERVICE_NAME`.
   * @default `OTEL_SERVICE_NAME`
   */
  serviceName?: string;
  /** prom-client's default process and Node.js metrics (`process_*`, `nodejs_*`). @default true */
  defaultMetrics?: boolean;
  /** HTTP RED metrics and request spans; `false` turns both off. @default {} */
  http?: HttpMetricsOptions | false;
  /** Redis client metrics; `false` turns them off. @default {} */
  redis?: RedisMetricsOptions | false;
  /** OpenTelemetry tracing; `false` forces it off whatever the environment says. */
  tracing?: TracingOptions | false;
  /** Sentry; `false` forces it off whatever the environment says. */
  sentry?: SentryOptions | false;
  /** Cluster-wide series; `false` turns them off. */
  series?: SeriesOptions | false;
  /** Read `OTEL_*`, `SENTRY_*` and `METRICS_*` variables for what the options leave unset. @default true */
  useEnv?: boolean;
  /** Where the variables are read from. @default process.env */
  env?: Record<string, string | undefined>;
}
