import { Controller, Get, Header, Inject, type Type } from '@nestjs/common';
import { Registry } from 'prom-client';
import { MetricsService } from './metrics.service';

/**
 * The Prometheus scrape endpoint: a controller class for `GET /<path>`, where `path` is the `path` extra of
 * `MetricsModule.forRoot`/`forRootAsync` (`'metrics'` by default).
 */
export function createMetricsController(path: string): Type<unknown> {
  @Controller(path)
  class MetricsController {
    constructor(@Inject(MetricsService) private readonly metrics: MetricsService) {}

    /** Prometheus text exposition format 0.0.4 of every registered metric. */
    @Get()
    @Header('Content-Type', Registry.PROMETHEUS_CONTENT_TYPE)
    @Header('Cache-Control', 'no-store')
    scrape(): Promise<string> {
      return this.metrics.metrics();
    }
  }
  return MetricsController;
}
