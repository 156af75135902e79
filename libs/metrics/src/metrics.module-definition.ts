import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { MetricsModuleOptions } from './metrics.interfaces';

/** Extras of `MetricsModule.forRoot`/`forRootAsync`, fixed when the module is declared. */
export interface MetricsModuleExtras {
  /** Make `MetricsService`, `TracingService` and `SeriesService` injectable everywhere. @default true */
  isGlobal: boolean;
  /** Path of the Prometheus endpoint (`GET /<path>`); `false` for none (serve it yourself). @default 'metrics' */
  path: string | false;
}

export const {
  ConfigurableModuleClass: ConfigurableMetricsModule,
  MODULE_OPTIONS_TOKEN: METRICS_MODULE_OPTIONS,
  OPTIONS_TYPE: METRICS_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: METRICS_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<MetricsModuleOptions>({ moduleName: 'Metrics' })
  .setClassMethodName('forRoot')
  .setExtras<MetricsModuleExtras>({ isGlobal: true, path: 'metrics' }, (definition, extras) => ({
    ...definition,
    global: extras.isGlobal,
  }))
  .build();
