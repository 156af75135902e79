import type {
  RedisBreakerOptions,
  RedisFallbackOptions,
  RedisHealthCheckOptions,
  RedisPoolOptions,
} from '../redis.interfaces';
import type { Layer, Section } from './client-layer';
import { ConfigProblem } from './config-problem';

export type ResolvedBreakerOptions = Required<RedisBreakerOptions>;
export type ResolvedHealthCheckOptions = Required<RedisHealthCheckOptions>;
export type ResolvedPoolOptions = Required<RedisPoolOptions>;
export type ResolvedFallbackOptions = Required<RedisFallbackOptions>;

/** A client's timeouts and sections, each from the first layer that sets it, else its default (public: `ResolvedRedisClientConfig` extends it, so it ships in the .d.ts). */
export interface ClientSettings {
  commandTimeout: number;
  connectTimeout: number;
  maxRetries: number;
  maxReconnectDelay: number;
  breaker: ResolvedBreakerOptions;
  healthCheck: ResolvedHealthCheckOptions;
  pool: ResolvedPoolOptions;
  fallback: ResolvedFallbackOptions;
}

/**
 * Timeouts and sections of one client from `layers` (first wins: the client's own options, then the
 * top-level options, then the environment) and the defaults. `prefix` starts the field of an error.
 * @internal
 */
export function resolveSettings(layers: Layer[], prefix: string): ClientSettings {
  const scalar = (key: keyof Layer['scalars'], def: number): number =>
    first(layers.map((l) => l.scalars[key])) ?? def;
  const num = (s: Section, key: string, def: number): number =>
    (first(layers.map((l) => l.sections[s][key])) as number | undefined) ?? def;
  const flag = (s: Section, key: string): boolean =>
    (first(layers.map((l) => l.sections[s][key])) as boolean | undefined) ?? true;

  const commandTimeout = scalar('commandTimeout', 1_000);
  const breaker: ResolvedBreakerOptions = {
    enabled: flag('breaker', 'enabled'),
    failureRateThreshold: num('breaker', 'failureRateThreshold', 50),
    slowCallRateThreshold: num('breaker', 'slowCallRateThreshold', 80),
    slowCallDuration: num('breaker', 'slowCallDuration', Math.max(1, Math.round(commandTimeout / 2))),
    window: num('breaker', 'window', 10_000),
    minimumVolume: num('breaker', 'minimumVolume', 20),
    resetTimeout: num('breaker', 'resetTimeout', 5_000),
    resetJitter: num('breaker', 'resetJitter', 0.2),
    maxHalfOpenTime: num('breaker', 'maxHalfOpenTime', 2 * commandTimeout),
  };
  const healthCheck: ResolvedHealthCheckOptions = {
    interval: num('healthCheck', 'interval', 2_000),
    timeout: num('healthCheck', 'timeout', commandTimeout),
    sampleSize: num('healthCheck', 'sampleSize', 20),
    reconnectAfter: num('healthCheck', 'reconnectAfter', 3),
  };
  const pool: ResolvedPoolOptions = {
    minSize: num('pool', 'minSize', 0),
    maxSize: num('pool', 'maxSize', 4),
    acquireTimeout: num('pool', 'acquireTimeout', 1_000),
    idleTimeout: num('pool', 'idleTimeout', 30_000),
    reapInterval: num('pool', 'reapInterval', 10_000),
    validateAfterIdle: num('pool', 'validateAfterIdle', 5_000),
  };
  if (pool.minSize > pool.maxSize) {
    throw new ConfigProblem(
      `${prefix}pool.minSize`,
      `(${pool.minSize}) must be less than or equal to pool.maxSize (${pool.maxSize}); lower minSize or raise maxSize`,
    );
  }
  const fallback: ResolvedFallbackOptions = {
    enabled: flag('fallback', 'enabled'),
    maxEntries: num('fallback', 'maxEntries', 10_000),
    maxBytes: num('fallback', 'maxBytes', 16 * 1024 * 1024),
  };
  return {
    commandTimeout,
    connectTimeout: scalar('connectTimeout', 5_000),
    maxRetries: scalar('maxRetries', 0),
    maxReconnectDelay: scalar('maxReconnectDelay', 2_000),
    breaker,
    healthCheck,
    pool,
    fallback,
  };
}

/** The first defined value. @internal */
export function first<T>(values: Array<T | undefined>): T | undefined {
  return values.find((v) => v !== undefined);
}
