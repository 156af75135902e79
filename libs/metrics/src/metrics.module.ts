import { Inject, Module, type DynamicModule, type OnModuleInit } from '@nestjs/common';
import { ApplicationConfig } from '@nestjs/core';
import { REDWING_METRICS } from '@redwing/redis';
import { collectDefaultMetrics } from 'prom-client';
import { createMetricsController } from './metrics.controller';
import { resolveMetricsConfig, type ResolvedMetricsConfig } from './metrics.config';
import { METRICS_CONFIG } from './metrics.constants';
import type { MetricsModuleOptions } from './metrics.interfaces';
import {
  ConfigurableMetricsModule,
  METRICS_ASYNC_OPTIONS_TYPE,
  METRICS_MODULE_OPTIONS,
  METRICS_OPTIONS_TYPE,
} from './metrics.module-definition';
import { MetricsService } from './metrics.service';
import { HttpObserver } from './http-observer';
import { ObservabilityInterceptor } from './observability.interceptor';
import { RedisMetrics } from './redis-metrics';
import { SentryReporter } from './sentry-reporter';
import { SeriesService } from './series.service';
import { TracingService } from './tracing.service';

/**
 * Metrics, traces and error reporting for a Nest app and every Redwing lib in it:
 * - one Prometheus registry (`MetricsService`, the API libs register their metrics through) served at
 *   `GET /metrics`, with Redis client metrics and HTTP RED metrics built in;
 * - OpenTelemetry tracing (`@opentelemetry/sdk-node`, configured by the standard `OTEL_*` variables):
 *   a span per request, a child per Redis command, and `withSpan` for libs' own steps;
 * - Sentry for unhandled errors (`SENTRY_DSN`), with route, redacted request and Redis state;
 * - cluster-wide per-minute series in Redis (`SeriesService`).
 *
 * Global by default, so libs can `@Optional()` inject `MetricsService` / `TracingService`
 * (`SeriesService` and `RedisMetrics` are exported too).
 * @example
 * MetricsModule.forRoot({ serviceName: 'orders' })
 * MetricsModule.forRootAsync({ inject: [ConfigService], useFactory: (c) => ({ serviceName: c.get('SERVICE') }) })
 */
@Module({
  providers: [
    {
      provide: METRICS_CONFIG,
      useFactory: (options: MetricsModuleOptions) => resolveMetricsConfig(options),
      inject: [METRICS_MODULE_OPTIONS],
    },
    MetricsService,
    { provide: REDWING_METRICS, useExisting: MetricsService },
    TracingService,
    SentryReporter,
    SeriesService,
    RedisMetrics,
    HttpObserver,
    ObservabilityInterceptor,
  ],
  exports: [MetricsService, REDWING_METRICS, TracingService, SeriesService, RedisMetrics],
})
export class MetricsModule extends ConfigurableMetricsModule implements OnModuleInit {
  constructor(
    @Inject(METRICS_CONFIG) private readonly config: ResolvedMetricsConfig,
    private readonly metrics: MetricsService,
    appConfig: ApplicationConfig,
    interceptor: ObservabilityInterceptor,
  ) {
    super();
    // A global interceptor costs every request an Observable chain, so it is added only when it has work:
    // naming the span's handler and recording errors (tracing), reporting them (Sentry). Added here, while
    // the app is built and before routes are registered, which is when APP_INTERCEPTOR ones are added too.
    if (config.tracing || config.sentry) appConfig.addGlobalInterceptor(interceptor);
  }

  static override forRoot(options: typeof METRICS_OPTIONS_TYPE): DynamicModule {
    return withController(super.forRoot(options), options.path);
  }

  static override forRootAsync(options: typeof METRICS_ASYNC_OPTIONS_TYPE): DynamicModule {
    return withController(super.forRootAsync(options), options.path);
  }

  onModuleInit(): void {
    const registry = this.metrics.registry;
    if (this.config.defaultMetrics && !registry.getSingleMetric('process_cpu_seconds_total')) {
      collectDefaultMetrics({ register: registry });
      // Gauges named like counters (promtool refuses them); the per-type gauges without `_total` stay.
      for (const name of UNLINTABLE_DEFAULT_METRICS) registry.removeSingleMetric(name);
    }
    this.metrics
      .gauge({
        name: 'redwing_metrics_service_info',
        help: 'Always 1; the labels name the service and the Node.js version.',
        labelNames: ['service', 'node_version'],
      })
      .set({ service: this.config.serviceName, node_version: process.version }, 1);
  }
}

/** prom-client default metrics that `promtool check metrics` rejects (gauges ending in `_total`). */
const UNLINTABLE_DEFAULT_METRICS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

function withController(module: DynamicModule, path: string | false | undefined): DynamicModule {
  if (path === false) return module;
  return {
    ...module,
    controllers: [...(module.controllers ?? []), createMetricsController(path ?? 'metrics')],
  };
}
