import { OptionChecker, type EnvOption } from '@redwing/redis';
import { MetricsConfigError } from './metrics.errors';
import type {
  MetricsModuleOptions,
  SeriesCounterSource,
  SentryOptions,
  TracingOptions,
} from './metrics.interfaces';

/** Default request-duration buckets, in seconds (5 ms … 10 s). */
export const DEFAULT_HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Default Redis command-latency buckets, in seconds (0.1 ms … 1 s). */
export const DEFAULT_REDIS_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
];

/**
 * Series every instance records from counters other libs register (`@redwing/cache`,
 * `@redwing/rate-limit`); a counter that is not registered contributes nothing.
 */
export const DEFAULT_SERIES_COUNTERS: Record<string, SeriesCounterSource> = {
  cache_hits: { metric: 'redwing_cache_hits_total' },
  cache_misses: { metric: 'redwing_cache_misses_total' },
  cache_stale: { metric: 'redwing_cache_stale_total' },
  limiter_rejections: { metric: 'redwing_ratelimit_decisions_total', labels: { result: 'denied' } },
  limiter_shadowed: { metric: 'redwing_ratelimit_decisions_total', labels: { result: 'shadowed' } },
};

/** Series the HTTP observer records itself (not sampled). */
export const BUILTIN_SERIES = ['requests', 'errors'] as const;

/** Variables this lib reads (besides those `@opentelemetry/sdk-node` reads for the exporter itself). */
export const METRICS_ENV_VARS = [
  'OTEL_SERVICE_NAME',
  'OTEL_SDK_DISABLED',
  'OTEL_TRACES_EXPORTER',
  'OTEL_EXPORTER_OTLP_ENDPOINT',
  'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
  'OTEL_EXPORTER_OTLP_PROTOCOL',
  'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL',
  'SENTRY_DSN',
  'SENTRY_ENVIRONMENT',
  'SENTRY_RELEASE',
  'METRICS_SERIES_ENABLED',
  'METRICS_SERIES_RETENTION',
  'METRICS_SERIES_FLUSH_INTERVAL',
] as const;

const TRACE_EXPORTERS = ['otlp', 'console', 'zipkin', 'none'];
const OTLP_PROTOCOLS = ['grpc', 'http/protobuf', 'http/json'] as const;
const SERIES_NAME = /^[a-z][a-z0-9_]{0,39}$/;
const SERVICE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const MAX_SERIES = 32;

/** The configuration after options, variables and defaults are merged and checked. */
export interface ResolvedMetricsConfig {
  serviceName: string;
  defaultMetrics: boolean;
  http: { buckets: number[]; maxRoutes: number } | null;
  redis: { buckets: number[]; maxCommands: number; memoryRefreshInterval: number } | null;
  /** `null` when tracing is off. */
  tracing: ResolvedTracing | null;
  sentry: { dsn: string; environment?: string; release?: string; init: SentryOptions['init'] } | null;
  series: {
    client: string;
    retention: number;
    flushInterval: number;
    maxBufferedMinutes: number;
    counters: Record<string, SeriesCounterSource>;
    ignoreRoutes: string[];
  } | null;
}

/** Tracing settings once it is on. `reason` names the option or variable that turned it on. */
export interface ResolvedTracing {
  startSdk: boolean;
  redisCommands: boolean;
  spanProcessors?: TracingOptions['spanProcessors'];
  reason: string;
}

type Env = Readonly<Record<string, unknown>>;

const check = new OptionChecker((field, message) => new MetricsConfigError(field, message));
const SEE_ALSO = 'the @redwing/metrics README';

/** The variables read as booleans or integers (the others are URLs, names and lists, checked below). */
const ENV = {
  sdkDisabled: { name: 'OTEL_SDK_DISABLED', field: 'value', kind: 'bool' },
  seriesEnabled: { name: 'METRICS_SERIES_ENABLED', field: 'value', kind: 'bool' },
  seriesRetention: {
    name: 'METRICS_SERIES_RETENTION',
    field: 'value',
    kind: 'int',
    range: { min: 120_000, max: 2_592_000_000, unit: 'ms' },
  },
  seriesFlushInterval: {
    name: 'METRICS_SERIES_FLUSH_INTERVAL',
    field: 'value',
    kind: 'int',
    range: { min: 100, max: 60_000, unit: 'ms' },
  },
} satisfies Record<string, EnvOption>;

/**
 * Merges options, `OTEL_*` / `SENTRY_*` / `METRICS_*` variables and defaults, field by field (options win),
 * and checks every field.
 * @throws MetricsConfigError naming the option or variable, never echoing its value
 */
export function resolveMetricsConfig(options: MetricsModuleOptions): ResolvedMetricsConfig {
  const o = check.object(options, 'options', "an object such as { serviceName: 'orders' }");
  check.keys(
    o,
    ['serviceName', 'defaultMetrics', 'http', 'redis', 'tracing', 'sentry', 'series', 'useEnv', 'env'],
    '',
    SEE_ALSO,
  );
  const env: Env =
    check.bool(o.useEnv, 'useEnv') === false
      ? {}
      : check.object(
          options.env ?? process.env,
          'env',
          'an object of environment variables (like process.env)',
        );
  const read = (name: string): string | undefined => {
    const v = env[name];
    if (v !== undefined && typeof v !== 'string') throw check.fail(name, 'must be a string');
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const fromEnv = <T>(spec: EnvOption): T | undefined => check.env(env, [spec]).value as T | undefined;

  const serviceName = options.serviceName ?? read('OTEL_SERVICE_NAME');
  if (typeof serviceName !== 'string' || !SERVICE_NAME.test(serviceName)) {
    throw check.fail(
      options.serviceName === undefined && read('OTEL_SERVICE_NAME') !== undefined
        ? 'OTEL_SERVICE_NAME'
        : 'serviceName',
      'must be 1–64 characters of A-Z a-z 0-9 _ . - (it names the service in spans, Sentry events and the ' +
        "series keys), e.g. MetricsModule.forRoot({ serviceName: 'orders' })",
    );
  }

  return {
    serviceName,
    defaultMetrics: check.bool(options.defaultMetrics, 'defaultMetrics') ?? true,
    http: resolveHttp(options.http),
    redis: resolveRedis(options.redis),
    tracing: resolveTracing(options.tracing, read, fromEnv),
    sentry: resolveSentry(options.sentry, read),
    series: resolveSeries(options.series, fromEnv),
  };
}

function resolveHttp(http: MetricsModuleOptions['http']): ResolvedMetricsConfig['http'] {
  if (http === false) return null;
  const o = section('http', http);
  check.keys(o, ['buckets', 'maxRoutes'], 'http.', SEE_ALSO);
  return {
    buckets: buckets('http.buckets', o.buckets, DEFAULT_HTTP_BUCKETS),
    maxRoutes: check.int(o.maxRoutes, 'http.maxRoutes', { min: 1, max: 10_000 }) ?? 200,
  };
}

function resolveRedis(redis: MetricsModuleOptions['redis']): ResolvedMetricsConfig['redis'] {
  if (redis === false) return null;
  const o = section('redis', redis);
  check.keys(o, ['buckets', 'maxCommands', 'memoryRefreshInterval'], 'redis.', SEE_ALSO);
  return {
    buckets: buckets('redis.buckets', o.buckets, DEFAULT_REDIS_BUCKETS),
    maxCommands: check.int(o.maxCommands, 'redis.maxCommands', { min: 1, max: 1_000 }) ?? 64,
    memoryRefreshInterval:
      check.duration(o.memoryRefreshInterval, 'redis.memoryRefreshInterval', { min: 100, max: 3_600_000 }) ??
      5_000,
  };
}

type Read = (name: string) => string | undefined;
type FromEnv = <T>(spec: EnvOption) => T | undefined;

function resolveTracing(
  tracing: MetricsModuleOptions['tracing'],
  read: Read,
  fromEnv: FromEnv,
): ResolvedTracing | null {
  // The variables are checked even when the options decide, so a typo never waits for the day it matters.
  const exporters = read('OTEL_TRACES_EXPORTER')
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const e of exporters ?? []) {
    if (!TRACE_EXPORTERS.includes(e)) {
      throw check.fail(
        'OTEL_TRACES_EXPORTER',
        `must list exporters among ${TRACE_EXPORTERS.join(', ')} (comma-separated); one is not supported`,
      );
    }
  }
  for (const name of ['OTEL_EXPORTER_OTLP_PROTOCOL', 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL']) {
    check.oneOf(read(name), name, OTLP_PROTOCOLS);
  }
  for (const name of ['OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT']) {
    const v = read(name);
    if (v !== undefined && !isHttpUrl(v)) {
      throw check.fail(name, 'must be an http:// or https:// URL, e.g. http://127.0.0.1:4318');
    }
  }
  const sdkDisabled = fromEnv<boolean>(ENV.sdkDisabled);

  if (tracing === false) return null;
  const o = section('tracing', tracing);
  check.keys(o, ['enabled', 'startSdk', 'spanProcessors', 'redisCommands'], 'tracing.', SEE_ALSO);
  let enabled: boolean;
  let reason: string;
  if (o.enabled !== undefined) {
    enabled = check.bool(o.enabled, 'tracing.enabled') ?? false;
    reason = 'tracing.enabled';
  } else if (sdkDisabled) {
    enabled = false;
    reason = 'OTEL_SDK_DISABLED';
  } else if (exporters && exporters.length > 0) {
    enabled = !(exporters.length === 1 && exporters[0] === 'none');
    reason = 'OTEL_TRACES_EXPORTER';
  } else {
    enabled =
      read('OTEL_EXPORTER_OTLP_ENDPOINT') !== undefined ||
      read('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT') !== undefined;
    reason = 'OTEL_EXPORTER_OTLP_ENDPOINT';
  }
  if (!enabled) return null;
  const spanProcessors = check.array(o.spanProcessors, 'tracing.spanProcessors', (p) => p);
  return {
    startSdk: check.bool(o.startSdk, 'tracing.startSdk') ?? true,
    redisCommands: check.bool(o.redisCommands, 'tracing.redisCommands') ?? true,
    spanProcessors: spanProcessors as TracingOptions['spanProcessors'],
    reason,
  };
}

function resolveSentry(sentry: MetricsModuleOptions['sentry'], read: Read): ResolvedMetricsConfig['sentry'] {
  const envDsn = read('SENTRY_DSN');
  if (envDsn !== undefined && !isDsn(envDsn)) {
    throw check.fail(
      'SENTRY_DSN',
      'is not a Sentry DSN; expected https://<public key>@<host>/<project id> (copy it from the project settings)',
    );
  }
  if (sentry === false) return null;
  const o = section('sentry', sentry);
  check.keys(o, ['dsn', 'environment', 'release', 'init'], 'sentry.', SEE_ALSO);
  if (o.dsn !== undefined && (typeof o.dsn !== 'string' || !isDsn(o.dsn))) {
    throw check.fail('sentry.dsn', 'is not a Sentry DSN; expected https://<public key>@<host>/<project id>');
  }
  const dsn = (o.dsn as string | undefined) ?? envDsn;
  if (!dsn) return null;
  const environment = check.string(o.environment, 'sentry.environment');
  const release = check.string(o.release, 'sentry.release');
  const init = check.optionalObject(o.init, 'sentry.init', 'an object of Sentry.init options');
  return {
    dsn,
    environment: environment ?? read('SENTRY_ENVIRONMENT') ?? read('NODE_ENV'),
    release: release ?? read('SENTRY_RELEASE'),
    init: init as SentryOptions['init'],
  };
}

function resolveSeries(
  series: MetricsModuleOptions['series'],
  fromEnv: FromEnv,
): ResolvedMetricsConfig['series'] {
  const envEnabled = fromEnv<boolean>(ENV.seriesEnabled);
  const envRetention = fromEnv<number>(ENV.seriesRetention);
  const envFlush = fromEnv<number>(ENV.seriesFlushInterval);
  if (series === false) return null;
  const o = section('series', series);
  check.keys(
    o,
    ['enabled', 'client', 'retention', 'flushInterval', 'maxBufferedMinutes', 'counters', 'ignoreRoutes'],
    'series.',
    SEE_ALSO,
  );
  const enabled = check.bool(o.enabled, 'series.enabled') ?? envEnabled ?? true;
  if (!enabled) return null;
  const client = check.string(o.client, 'series.client', {
    pattern: /^[A-Za-z0-9_-]{1,32}$/,
    hint: 'the name of a RedisClientModule client (1–32 of A-Z a-z 0-9 _ -)',
  });
  const counters: Record<string, SeriesCounterSource> = { ...DEFAULT_SERIES_COUNTERS };
  if (o.counters !== undefined) {
    const given = check.object(o.counters, 'series.counters', 'an object of series name -> counter');
    for (const [name, source] of Object.entries(given)) {
      const field = `series.counters.${name}`;
      if (!SERIES_NAME.test(name) || (BUILTIN_SERIES as readonly string[]).includes(name)) {
        throw check.fail(
          field,
          `is not a usable series name: 1–40 of a-z 0-9 _, starting with a letter, not ${BUILTIN_SERIES.join(' or ')}`,
        );
      }
      const s = typeof source === 'string' ? { metric: source } : (source as SeriesCounterSource);
      if (!s || typeof s.metric !== 'string' || !/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(s.metric)) {
        throw check.fail(
          field,
          "must be a metric name or { metric, labels? }, e.g. 'redwing_cache_hits_total'",
        );
      }
      if (s.labels !== undefined) {
        const labels = check.object(s.labels, `${field}.labels`, 'an object of label values');
        if (Object.values(labels).some((v) => typeof v !== 'string')) {
          throw check.fail(`${field}.labels`, 'must map label names to string values');
        }
      }
      counters[name] = { metric: s.metric, ...(s.labels ? { labels: { ...s.labels } } : {}) };
    }
  }
  if (Object.keys(counters).length + BUILTIN_SERIES.length > MAX_SERIES) {
    throw check.fail('series.counters', `may define at most ${MAX_SERIES - BUILTIN_SERIES.length} series`);
  }
  const ignoreRoutes = check.array(o.ignoreRoutes, 'series.ignoreRoutes', (route, field) =>
    check.string(route, field),
  ) as string[] | undefined;
  return {
    client: client ?? 'default',
    retention:
      check.duration(o.retention, 'series.retention', ENV.seriesRetention.range) ??
      envRetention ??
      86_400_000,
    flushInterval:
      check.duration(o.flushInterval, 'series.flushInterval', ENV.seriesFlushInterval.range) ??
      envFlush ??
      5_000,
    maxBufferedMinutes:
      check.int(o.maxBufferedMinutes, 'series.maxBufferedMinutes', { min: 0, max: 60 }) ?? 5,
    counters,
    ignoreRoutes: ignoreRoutes ?? ['/metrics'],
  };
}

// ---------------------------------------------------------------------------------------------------

/** An option section: `undefined` for all defaults, else a plain object (`false` is handled by the caller). */
function section(field: string, value: unknown): Record<string, unknown> {
  return check.object(value ?? {}, field, 'an object (or false to turn it off)');
}

function buckets(field: string, value: unknown, fallback: number[]): number[] {
  if (value === undefined) return [...fallback];
  if (
    !Array.isArray(value) ||
    value.length === 0 ||
    value.length > 50 ||
    value.some(
      (b, i) => typeof b !== 'number' || !Number.isFinite(b) || b <= 0 || (i > 0 && b <= value[i - 1]),
    )
  ) {
    throw check.fail(field, 'must be 1–50 increasing positive numbers (seconds)');
  }
  return [...value] as number[];
}

function isHttpUrl(value: string): boolean {
  try {
    const u = new URL(value);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '';
  } catch {
    return false;
  }
}

function isDsn(value: string): boolean {
  try {
    const u = new URL(value);
    return (
      (u.protocol === 'http:' || u.protocol === 'https:') &&
      u.username !== '' &&
      u.hostname !== '' &&
      /\/\d+$/.test(u.pathname)
    );
  } catch {
    return false;
  }
}
