export { MetricsModule } from './metrics.module';
export {
  MetricsService,
  METRIC_NAME,
  type CounterDefinition,
  type GaugeDefinition,
  type HistogramDefinition,
} from './metrics.service';
export {
  TracingService,
  withSpan,
  recordError,
  isTracingActive,
  type WithSpanOptions,
} from './tracing.service';
export {
  SeriesService,
  BUCKET,
  MAX_QUERY_BUCKETS,
  type SeriesQueryResult,
  type SeriesRange,
  type FlushOutcome,
} from './series.service';
export { MetricsConfigError, SeriesUnavailableError } from './metrics.errors';
export { resolveMetricsConfig, METRICS_ENV_VARS, DEFAULT_SERIES_COUNTERS } from './metrics.config';
export { RedisMetrics, REDIS_METRICS, type RedisMemory } from './redis-metrics';
export { HTTP_METRICS, UNMATCHED_ROUTE } from './http-observer';
export { redactHeaders, redactQuery, FILTERED } from './redact-request';
export { type MetricsModuleExtras } from './metrics.module-definition';
export type {
  MetricsModuleOptions,
  HttpMetricsOptions,
  RedisMetricsOptions,
  TracingOptions,
  SentryOptions,
  SeriesOptions,
  SeriesCounterSource,
} from './metrics.interfaces';
