// Nest pieces the lib integration tests share. Kept out of test/harness: the harness's crash-safety test
// compiles every file there without decorators, and the harness (redis-server processes) does not need
// @redwing/metrics and @redwing/redis, which this file loads.
import { Global, Module } from '@nestjs/common';
import { MetricsService } from '@redwing/metrics';
import { REDWING_METRICS, type RedisClientModuleOptions } from '@redwing/redis';
import { fastRedisOptions } from './harness/fast-redis';

/**
 * Only the registry of `@redwing/metrics` under the `REDWING_METRICS` token (what the libs inject, as
 * `MetricsModule` provides it), without the metrics module's HTTP interceptor, tracing and environment.
 */
@Global()
@Module({
  providers: [MetricsService, { provide: REDWING_METRICS, useExisting: MetricsService }],
  exports: [MetricsService, REDWING_METRICS],
})
export class TestMetricsModule {}

/** Where a test's Redis is: a URL, or Cluster seed nodes. */
export type Topology = { url: string } | { cluster: Array<{ host: string; port: number }> };

/** Fast Redis options for `topology`, with `extra` laid over them. */
export function redisOptions(
  topology: Topology,
  extra: Partial<RedisClientModuleOptions> = {},
): RedisClientModuleOptions {
  const base = 'url' in topology ? { url: topology.url } : { cluster: { nodes: topology.cluster } };
  return { ...fastRedisOptions(), ...base, ...extra };
}
