import { Module } from '@nestjs/common';
import { StatsController } from './stats.controller';

/**
 * `GET /stats/series` and `GET /stats/overview`. Needs the global `MetricsModule` (SeriesService,
 * RedisMetrics), which `metricsFeature` imports before it.
 */
@Module({ controllers: [StatsController] })
export class ObservabilityModule {}
