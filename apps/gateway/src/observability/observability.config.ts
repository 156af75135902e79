import type { ConfigService } from '@nestjs/config';
import type { MetricsModuleOptions } from '@redwing/metrics';
import type { GatewayEnv } from '../config/gateway-env.schema';

/**
 * Routes that are not application traffic and so are left out of the `requests` series: scrapes, health
 * probes, and the dashboard polling its own data every 2 s. They still have their RED metrics.
 */
export const NON_TRAFFIC_ROUTES = [
  '/metrics',
  '/health',
  '/health/ready',
  '/stats/series',
  '/stats/overview',
  '/',
  '/dashboard/dashboard.js',
  '/dashboard/dashboard.css',
];

/**
 * MetricsModule options of the gateway. Everything else comes from the environment, read and validated by
 * `@redwing/metrics` itself: tracing from the standard `OTEL_*` variables, Sentry from `SENTRY_DSN`
 * (`SENTRY_ENVIRONMENT`, `SENTRY_RELEASE`), the series from `METRICS_SERIES_ENABLED`,
 * `METRICS_SERIES_RETENTION` and `METRICS_SERIES_FLUSH_INTERVAL`.
 */
export function metricsOptionsFrom(config: ConfigService<GatewayEnv, true>): MetricsModuleOptions {
  return {
    serviceName: config.get('OTEL_SERVICE_NAME', { infer: true }) || 'gateway',
    series: { ignoreRoutes: NON_TRAFFIC_ROUTES },
  };
}
