import { Global, Module } from '@nestjs/common';
import { MetricsService } from '@redwing/metrics';

/** The registry the metrics module would provide, so the libs count what they do as in production. */
@Global()
@Module({ providers: [MetricsService], exports: [MetricsService] })
export class MetricsRegistryModule {}
