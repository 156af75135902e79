import { OptionChecker, type NumberRange } from '../config-kit';

/**
 * A validation failure before `resolveRedisConfig` turns it into a (scrubbed) `RedisConfigError`: the
 * field or variable may still hold a password at this point.
 * @internal
 */
export class ConfigProblem extends Error {
  override readonly name = 'ConfigProblem';

  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

/** The config kit, failing with {@link ConfigProblem}. @internal */
export const check = new OptionChecker((field, message) => new ConfigProblem(field, message));

/** Range and unit of every number option, by dotted path (`resetJitter` is the only real one). @internal */
export const LIMITS = {
  port: { min: 1, max: 65_535 },
  db: { min: 0, max: 15 },
  connectTimeout: { min: 1, max: 600_000, unit: 'ms' },
  commandTimeout: { min: 1, max: 600_000, unit: 'ms' },
  maxRetries: { min: 0, max: 100 },
  maxReconnectDelay: { min: 1, max: 600_000, unit: 'ms' },
  'breaker.failureRateThreshold': { min: 1, max: 100, unit: '(%)' },
  'breaker.slowCallRateThreshold': { min: 1, max: 100, unit: '(%)' },
  'breaker.slowCallDuration': { min: 1, max: 600_000, unit: 'ms' },
  'breaker.window': { min: 1, max: 3_600_000, unit: 'ms' },
  'breaker.minimumVolume': { min: 1, max: 1_000_000 },
  'breaker.resetTimeout': { min: 1, max: 3_600_000, unit: 'ms' },
  'breaker.resetJitter': { min: 0, max: 1 },
  'breaker.maxHalfOpenTime': { min: 1, max: 3_600_000, unit: 'ms' },
  'healthCheck.interval': { min: 0, max: 3_600_000, unit: 'ms' },
  'healthCheck.timeout': { min: 1, max: 600_000, unit: 'ms' },
  'healthCheck.sampleSize': { min: 1, max: 10_000 },
  'healthCheck.reconnectAfter': { min: 0, max: 1_000 },
  'pool.minSize': { min: 0, max: 1_000 },
  'pool.maxSize': { min: 1, max: 1_000 },
  'pool.acquireTimeout': { min: 1, max: 600_000, unit: 'ms' },
  'pool.idleTimeout': { min: 1, max: 86_400_000, unit: 'ms' },
  'pool.reapInterval': { min: 1, max: 3_600_000, unit: 'ms' },
  'pool.validateAfterIdle': { min: 0, max: 86_400_000, unit: 'ms' },
  'fallback.maxEntries': { min: 1, max: 100_000_000 },
  'fallback.maxBytes': { min: 1, max: 17_179_869_184, unit: '(bytes)' },
} satisfies Record<string, NumberRange>;

/** A key of {@link LIMITS}. @internal */
export type LimitKey = keyof typeof LIMITS;

/** The options of a plain object, by name. @internal */
export type Obj = Record<string, unknown>;
