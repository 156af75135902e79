import type { RedisClientModuleOptions } from '@redwing/redis';

/**
 * Redis client options for tests: short command/connect timeouts, quick reconnects and health checks, and
 * no `REDIS_*` environment leaking in from the shell. Spread it under a test's own options, passing
 * `overrides` for what that suite needs (e.g. `fastRedisOptions({ commandTimeout: 500 })`).
 *
 * Defaults: `commandTimeout` 300 ms, `connectTimeout` 500 ms, `maxReconnectDelay` 200 ms,
 * `healthCheck.interval` 200 ms, `useEnv` false.
 *
 * @example
 *   RedisClientModule.forRoot({ ...fastRedisOptions(), url: server.url() });
 */
export function fastRedisOptions(
  overrides: Partial<RedisClientModuleOptions> = {},
): Partial<RedisClientModuleOptions> {
  return {
    useEnv: false,
    commandTimeout: 300,
    connectTimeout: 500,
    maxReconnectDelay: 200,
    healthCheck: { interval: 200 },
    ...overrides,
  };
}
