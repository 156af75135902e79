import type { DynamicModule, Type } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { MetricsModule } from '@redwing/metrics';
import { DashboardModule } from '../dashboard/dashboard.module';
import { metricsOptionsFrom } from '../observability/observability.config';
import { ObservabilityModule } from '../observability/observability.module';

/**
 * Modules the metrics feature adds to the gateway (owned by the metrics work; app.module.ts imports this
 * list): `MetricsModule` (global: `GET /metrics`, HTTP and Redis metrics, tracing from `OTEL_*`, Sentry from
 * `SENTRY_DSN`, cluster-wide series), `GET /stats/series` and `GET /stats/overview`, and the dashboard at `/`.
 */
export const metricsFeature: Array<Type<unknown> | DynamicModule> = [
  MetricsModule.forRootAsync({ inject: [ConfigService], useFactory: metricsOptionsFrom }),
  ObservabilityModule,
  DashboardModule,
];
