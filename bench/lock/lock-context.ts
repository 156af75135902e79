// Ours for the lock benches: a Nest context with RedisClientModule (as every bench boots it), the metrics
// registry under REDWING_METRICS (so grants are counted as in production) and LockModule.
import { Global, Module, type INestApplicationContext } from '@nestjs/common';
import { LockModule, LockService } from '@redwing/lock';
import { MetricsService } from '@redwing/metrics';
import { REDWING_METRICS } from '@redwing/redis';
import { createContext } from '../lib/nest-context';
import { benchRedisModule, readyClient } from '../lib/redis-module';
import type { BenchRedis } from '../lib';

@Global()
@Module({
  providers: [MetricsService, { provide: REDWING_METRICS, useExisting: MetricsService }],
  exports: [MetricsService, REDWING_METRICS],
})
class LockBenchMetricsModule {}

/** The app context and its LockService, Redis ready. */
export async function lockContext(
  redis: BenchRedis,
): Promise<{ app: INestApplicationContext; locks: LockService }> {
  const app = await createContext([
    benchRedisModule(redis.url, { breaker: { enabled: true } }),
    LockBenchMetricsModule,
    LockModule.forRoot({ useEnv: false }),
  ]);
  await readyClient(app);
  return { app, locks: app.get(LockService) };
}
