import { Global, Module } from '@nestjs/common';
import { MetricsService } from '@redwing/metrics';
import { REDWING_METRICS } from '@redwing/redis';

/**
 * The registry as MetricsModule provides it — `MetricsService`, and the same instance under
 * `REDWING_METRICS`, the token the libs inject — so the libs count what they do as in production.
 */
@Global()
@Module({
  providers: [MetricsService, { provide: REDWING_METRICS, useExisting: MetricsService }],
  exports: [MetricsService, REDWING_METRICS],
})
export class MetricsRegistryModule {}
