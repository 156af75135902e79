import { Global, Module, type ModuleMetadata } from '@nestjs/common';
import { Test, type TestingModule } from '@nestjs/testing';
import { MetricsService } from '@redwing/metrics';
import { LockModule, LockService, type LockModuleOptions } from '@redwing/lock';
import { RedisClientManager, RedisClientModule, REDWING_METRICS, type RedisClientModuleOptions } from '@redwing/redis';
import { CapturingLogger, fastRedisOptions } from '../../../test/harness';

export { CapturingLogger, fastRedisOptions, sleep, waitFor } from '../../../test/harness';

/** Only the registry of `@redwing/metrics` under `REDWING_METRICS` (what the lock lib injects). */
@Global()
@Module({
  providers: [MetricsService, { provide: REDWING_METRICS, useExisting: MetricsService }],
  exports: [MetricsService, REDWING_METRICS],
})
export class TestMetricsModule {}

export interface Booted {
  module: TestingModule;
  locks: LockService;
  manager: RedisClientManager;
  metrics: MetricsService;
  logger: CapturingLogger;
}

/**
 * A Nest context with Redis (fast test timeouts), metrics and the lock module, every Redis client ready.
 * `extra` adds providers (e.g. a service with `@WithLock`).
 */
export async function bootLocks(
  redis: RedisClientModuleOptions,
  lock: LockModuleOptions = {},
  extra: Pick<ModuleMetadata, 'providers'> = {},
): Promise<Booted> {
  const logger = new CapturingLogger();
  const module = await Test.createTestingModule({
    imports: [
      RedisClientModule.forRoot({ ...fastRedisOptions({ commandTimeout: 500 }), ...redis }),
      TestMetricsModule,
      LockModule.forRoot({ useEnv: false, ...lock }),
    ],
    providers: extra.providers ?? [],
  })
    .setLogger(logger)
    .compile();
  await module.init();
  const manager = module.get(RedisClientManager);
  for (const client of manager.all()) {
    if (!(await client.waitUntilReady(10_000))) throw new Error(`Redis client ${client.name} not ready within 10 s`);
  }
  return { module, locks: module.get(LockService), manager, metrics: module.get(MetricsService), logger };
}

/** The value of a counter/histogram-count sample in the Prometheus text, or 0. */
export async function metricValue(metrics: MetricsService, line: string): Promise<number> {
  const text = await metrics.registry.metrics();
  const found = text.split('\n').find((l) => l.startsWith(line + ' '));
  return found ? Number(found.slice(line.length + 1)) : 0;
}
