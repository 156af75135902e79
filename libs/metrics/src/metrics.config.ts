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
const OTLP_PROTOCOLS = ['grpc', 'http/protobuf', 'http/json'];
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

type Env = Record<string, string | undefined>;

/**
 * Merges options, `OTEL_*` / `SENTRY_*` / `METRICS_*` variables and defaults, field by field (options win),
 * and checks every field.
 * @throws MetricsConfigError naming the option or variable, never echoing its value
 */
export function resolveMetricsConfig(options: MetricsModuleOptions): ResolvedMetricsConfig {
  if (!options || typeof options !== 'object') {
    throw new MetricsConfigError('options', "must be an object such as { serviceName: 'orders' }");
  }
  checkKeys('options', options, [
    'serviceName',
    'defaultMetrics',
    'http',
    'redis',
    'tracing',
    'sentry',
    'series',
    'useEnv',
    'env',
  ]);
  const env: Env = options.useEnv === false ? {} : (options.env ?? process.env);
  const read = (name: string): string | undefined => {
    const v = env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };

  const serviceName = options.serviceName ?? read('OTEL_SERVICE_NAME');
  if (typeof serviceName !== 'string' || !SERVICE_NAME.test(serviceName)) {
    throw new MetricsConfigError(
      options.serviceName === undefined && read('OTEL_SERVICE_NAME') !== undefined
        ? 'OTEL_SERVICE_NAME'
        : 'serviceName',
      'must be 1–64 characters of A-Z a-z 0-9 _ . - (it names the service in spans, Sentry events and the ' +
        "series keys), e.g. MetricsModule.forRoot({ serviceName: 'orders' })",
    );
  }

  return {
    serviceName,
    defaultMetrics: bool('defaultMetrics', options.defaultMetrics, true),
    http: resolveHttp(options.http),
    redis: resolveRedis(options.redis),
    tracing: resolveTracing(options.tracing, read),
    sentry: resolveSentry(options.sentry, read),
    series: resolveSeries(options.series, read),
  };
}

function resolveHttp(http: MetricsModuleOptions['http']): ResolvedMetricsConfig['http'] {
  if (http === false) return null;
  const o = object('http', http ?? {});
  checkKeys('http', o, ['buckets', 'maxRoutes']);
  return {
    buckets: buckets('http.buckets', o.buckets, DEFAULT_HTTP_BUCKETS),
    maxRoutes: int('http.maxRoutes', o.maxRoutes, 200, 1, 10_000),
  };
}

function resolveRedis(redis: MetricsModuleOptions['redis']): ResolvedMetricsConfig['redis'] {
  if (redis === false) return null;
  const o = object('redis', redis ?? {});
  checkKeys('redis', o, ['buckets', 'maxCommands', 'memoryRefreshInterval']);
  return {
    buckets: buckets('redis.buckets', o.buckets, DEFAULT_REDIS_BUCKETS),
    maxCommands: int('redis.maxCommands', o.maxCommands, 64, 1, 1_000),
    memoryRefreshInterval: int('redis.memoryRefreshInterval', o.memoryRefreshInterval, 5_000, 100, 3_600_000),
  };
}

function resolveTracing(
  tracing: MetricsModuleOptions['tracing'],
  read: (name: string) => string | undefined,
): ResolvedTracing | null {
  // The variables are checked even when the options decide, so a typo never waits for the day it matters.
  const exporters = read('OTEL_TRACES_EXPORTER')
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const e of exporters ?? []) {
    if (!TRACE_EXPORTERS.includes(e)) {
      throw new MetricsConfigError(
        'OTEL_TRACES_EXPORTER',
        `must list exporters among ${TRACE_EXPORTERS.join(', ')} (comma-separated); one is not supported`,
      );
    }
  }
  for (const name of ['OTEL_EXPORTER_OTLP_PROTOCOL', 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL']) {
    const v = read(name);
    if (v !== undefined && !OTLP_PROTOCOLS.includes(v)) {
      throw new MetricsConfigError(name, `must be one of ${OTLP_PROTOCOLS.join(', ')}`);
    }
  }
  for (const name of ['OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT']) {
    const v = read(name);
    if (v !== undefined && !isHttpUrl(v)) {
      throw new MetricsConfigError(name, 'must be an http:// or https:// URL, e.g. http://127.0.0.1:4318');
    }
  }
  const sdkDisabled = boolEnv('OTEL_SDK_DISABLED', read('OTEL_SDK_DISABLED'));

  if (tracing === false) return null;
  const o = object('tracing', tracing ?? {});
  checkKeys('tracing', o, ['enabled', 'startSdk', 'spanProcessors', 'redisCommands']);
  let enabled: boolean;
  let reason: string;
  if (o.enabled !== undefined) {
    enabled = bool('tracing.enabled', o.enabled, false);
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
  if (o.spanProcessors !== undefined && !Array.isArray(o.spanProcessors)) {
    throw new MetricsConfigError('tracing.spanProcessors', 'must be an array of SpanProcessor');
  }
  return {
    startSdk: bool('tracing.startSdk', o.startSdk, true),
    redisCommands: bool('tracing.redisCommands', o.redisCommands, true),
    spanProcessors: o.spanProcessors as TracingOptions['spanProcessors'],
    reason,
  };
}

function resolveSentry(
  sentry: MetricsModuleOptions['sentry'],
  read: (name: string) => string | undefined,
): ResolvedMetricsConfig['sentry'] {
  const envDsn = read('SENTRY_DSN');
  if (envDsn !== undefined && !isDsn(envDsn)) {
    throw new MetricsConfigError(
      'SENTRY_DSN',
      'is not a Sentry DSN; expected https://<public key>@<host>/<project id> (copy it from the project settings)',
    );
  }
  if (sentry === false) return null;
  const o = object('sentry', sentry ?? {});
  checkKeys('sentry', o, ['dsn', 'environment', 'release', 'init']);
  if (o.dsn !== undefined && (typeof o.dsn !== 'string' || !isDsn(o.dsn))) {
    throw new MetricsConfigError(
      'sentry.dsn',
      'is not a Sentry DSN; expected https://<public key>@<host>/<project id>',
    );
  }
  const dsn = (o.dsn as string | undefined) ?? envDsn;
  if (!dsn) return null;
  for (const key of ['environment', 'release'] as const) {
    if (o[key] !== undefined && typeof o[key] !== 'string') {
      throw new MetricsConfigError(`sentry.${key}`, 'must be a string');
    }
  }
  if (o.init !== undefined && (typeof o.init !== 'object' || o.init === null)) {
    throw new MetricsConfigError('sentry.init', 'must be an object of Sentry.init options');
  }
  return {
    dsn,
    environment: (o.environment as string | undefined) ?? read('SENTRY_ENVIRONMENT') ?? read('NODE_ENV'),
    release: (o.release as string | undefined) ?? read('SENTRY_RELEASE'),
    init: o.init as SentryOptions['init'],
  };
}

function resolveSeries(
  series: MetricsModuleOptions['series'],
  read: (name: string) => string | undefined,
): ResolvedMetricsConfig['series'] {
  const envEnabled = boolEnv('METRICS_SERIES_ENABLED', read('METRICS_SERIES_ENABLED'));
  const envRetention = intEnv(
    'METRICS_SERIES_RETENTION',
    read('METRICS_SERIES_RETENTION'),
    120_000,
    2_592_000_000,
  );
  const envFlush = intEnv(
    'METRICS_SERIES_FLUSH_INTERVAL',
    read('METRICS_SERIES_FLUSH_INTERVAL'),
    100,
    60_000,
  );
  if (series === false) return null;
  const o = object('series', series ?? {});
  checkKeys('series', o, [
    'enabled',
    'client',
    'retention',
    'flushInterval',
    'maxBufferedMinutes',
    'counters',
    'ignoreRoutes',
  ]);
  const enabled = o.enabled !== undefined ? bool('series.enabled', o.enabled, true) : (envEnabled ?? true);
  if (!enabled) return null;
  if (o.client !== undefined && (typeof o.client !== 'string' || !/^[A-Za-z0-9_-]{1,32}$/.test(o.client))) {
    throw new MetricsConfigError(
      'series.client',
      'must name a RedisClientModule client (1–32 of A-Z a-z 0-9 _ -)',
    );
  }
  const counters: Record<string, SeriesCounterSource> = { ...DEFAULT_SERIES_COUNTERS };
  if (o.counters !== undefined) {
    const given = object('series.counters', o.counters);
    for (const [name, source] of Object.entries(given)) {
      const field = `series.counters.${name}`;
      if (!SERIES_NAME.test(name) || (BUILTIN_SERIES as readonly string[]).includes(name)) {
        throw new MetricsConfigError(
          field,
          `is not a usable series name: 1–40 of a-z 0-9 _, starting with a letter, not ${BUILTIN_SERIES.join(' or ')}`,
        );
      }
      const s = typeof source === 'string' ? { metric: source } : (source as SeriesCounterSource);
      if (!s || typeof s.metric !== 'string' || !/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(s.metric)) {
        throw new MetricsConfigError(
          field,
          "must be a metric name or { metric, labels? }, e.g. 'redwing_cache_hits_total'",
        );
      }
      if (s.labels !== undefined) {
        const labels = object(`${field}.labels`, s.labels);
        if (Object.values(labels).some((v) => typeof v !== 'string')) {
          throw new MetricsConfigError(`${field}.labels`, 'must map label names to string values');
        }
      }
      counters[name] = { metric: s.metric, ...(s.labels ? { labels: { ...s.labels } } : {}) };
    }
  }
  if (Object.keys(counters).length + BUILTIN_SERIES.length > MAX_SERIES) {
    throw new MetricsConfigError(
      'series.counters',
      `may define at most ${MAX_SERIES - BUILTIN_SERIES.length} series`,
    );
  }
  let ignoreRoutes = ['/metrics'];
  if (o.ignoreRoutes !== undefined) {
    if (!Array.isArray(o.ignoreRoutes) || o.ignoreRoutes.some((r) => typeof r !== 'string')) {
      throw new MetricsConfigError(
        'series.ignoreRoutes',
        "must be an array of route templates, e.g. ['/metrics']",
      );
    }
    ignoreRoutes = [...(o.ignoreRoutes as string[])];
  }
  return {
    client: (o.client as string | undefined) ?? 'default',
    retention:
      o.retention !== undefined
        ? int('series.retention', o.retention, 0, 120_000, 2_592_000_000)
        : (envRetention ?? 86_400_000),
    flushInterval:
      o.flushInterval !== undefined
        ? int('series.flushInterval', o.flushInterval, 0, 100, 60_000)
        : (envFlush ?? 5_000),
    maxBufferedMinutes: int('series.maxBufferedMinutes', o.maxBufferedMinutes, 5, 0, 60),
    counters,
    ignoreRoutes,
  };
}

// ---------------------------------------------------------------------------------------------------

function object(field: string, value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new MetricsConfigError(field, 'must be an object (or false to turn it off)');
  }
  return value as Record<string, unknown>;
}

function checkKeys(field: string, value: object, known: string[]): void {
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) {
      const hint = known.find((k) => k.toLowerCase() === key.toLowerCase() || closeTo(k, key));
      throw new MetricsConfigError(
        field === 'options' ? key : `${field}.${key}`,
        `is an unknown option${hint ? `; did you mean ${hint}?` : `; known: ${known.join(', ')}`}`,
      );
    }
  }
}

/** One edit apart (insertion, deletion or substitution): enough for "did you mean". */
function closeTo(a: string, b: string): boolean {
  if (Math.abs(a.length - b.length) > 1) return false;
  let i = 0;
  let j = 0;
  let edits = 0;
  while (i < a.length && j < b.length) {
    if (a[i] === b[j]) {
      i++;
      j++;
      continue;
    }
    if (++edits > 1) return false;
    if (a.length > b.length) i++;
    else if (b.length > a.length) j++;
    else {
      i++;
      j++;
    }
  }
  return edits + (a.length - i) + (b.length - j) <= 1;
}

function bool(field: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new MetricsConfigError(field, 'must be true or false');
  return value;
}

function boolEnv(name: string, value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined;
  const v = value.toLowerCase();
  if (['true', '1', 'yes'].includes(v)) return true;
  if (['false', '0', 'no'].includes(v)) return false;
  throw new MetricsConfigError(name, 'must be true or false (also 1/0, yes/no)');
}

function int(field: string, value: unknown, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new MetricsConfigError(field, `must be an integer from ${min} to ${max}`);
  }
  return value;
}

function intEnv(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new MetricsConfigError(name, `must be an integer from ${min} to ${max} (milliseconds)`);
  }
  return n;
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
    throw new MetricsConfigError(field, 'must be 1–50 increasing positive numbers (seconds)');
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
