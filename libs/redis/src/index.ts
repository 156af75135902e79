export { RedisClientModule } from './redis.module';
export { RedisClientManager } from './redis-client.manager';
export { ManagedRedisClient, type RedisConnection } from './managed-redis-client';
// The command hook (admission, in-flight tracking, settling, parking) lives in command-hook.ts.
export { type ClientCounters } from './command-hook';
export { InjectRedis, getRedisToken } from './inject-redis.decorator';
export { RedisHealthIndicator, type RedisHealthIndicatorResult } from './redis.health';
export {
  RedisEvents,
  type RedisEventMap,
  type RedisEventName,
  type CommandOutcome,
  type RedisCommandTracer,
} from './redis-events';
export { CircuitBreaker, Admission, type BreakerTransition } from './circuit-breaker';
export {
  FallbackStore,
  estimateSize,
  type FallbackStoreOptions,
  type FallbackStoreStats,
} from './fallback-store';
export { type PoolStats } from './connection-pool';
export { type HealthSnapshot } from './health-monitor';
export { redactUrl, redactText } from './redact';
export { BackoffTimer } from './backoff-timer';
export { ChannelSubscription, type ChannelSubscriptionOptions } from './channel-subscription';
export { runWithRedisBudget, isRedisBudgetSpent } from './request-budget';
export { chainRequestHook, hasRequestHook, type AdapterRequestHook } from './request-hook';
export {
  runInSpan,
  setSpanRunner,
  type RedwingSpan,
  type RedwingSpanOptions,
  type SpanRunner,
} from './spans';
// Option resolution; the parts (address parsing, REDIS_* table, layers, secrets) live in config/.
export {
  resolveRedisConfig,
  readRedisEnv,
  isLoopbackHost,
  REDIS_ENV_VARS,
  type ResolvedRedisClientConfig,
  type ResolvedRedisModuleConfig,
  type RedisEnvOptions,
} from './redis.config';
export { DEFAULT_CLIENT } from './redis.constants';
export {
  RedisUnavailableError,
  RedisCommandTimeoutError,
  RedisConfigError,
  RedisPoolTimeoutError,
  RedisConnectionLostError,
  RedisScriptError,
  isRedisUnavailable,
  describeRedisError,
  type RedisUnavailableReason,
} from './redis.errors';
export {
  OptionChecker,
  layerOptions,
  closestName,
  describeValue,
  quoteValue,
  type ConfigErrorFactory,
  type NumberRange,
  type EnvOption,
  type OptionBag,
} from './config-kit';
export {
  defineScripts,
  luaScript,
  type LuaScript,
  type ScriptArg,
  type ScriptCaller,
  type ScriptCallers,
} from './redis-scripts';
export {
  REDWING_METRICS,
  type MetricsRegistry,
  type MetricDefinition,
  type MetricLabels,
  type CounterMetric,
  type GaugeMetric,
  type HistogramMetric,
} from './metrics-registry';
export type {
  RedisClientModuleOptions,
  RedisClientOptions,
  RedisTlsOptions,
  RedisBreakerOptions,
  RedisHealthCheckOptions,
  RedisPoolOptions,
  RedisFallbackOptions,
  RedisClusterNode,
  RedisTopology,
  RedisConnectionState,
  BreakerState,
  RedisClientHealth,
} from './redis.interfaces';
