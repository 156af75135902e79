import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { JobQueueModuleOptions } from './job-queue.interfaces';

export const {
  ConfigurableModuleClass: ConfigurableJobQueueModule,
  MODULE_OPTIONS_TOKEN: JOB_QUEUE_MODULE_OPTIONS,
  OPTIONS_TYPE: JOB_QUEUE_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: JOB_QUEUE_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<JobQueueModuleOptions>({ moduleName: 'JobQueue' })
  .setClassMethodName('forRoot')
  // Global by default, like @nestjs/bullmq's forRoot: registerQueue() modules anywhere in the app need the service.
  .setExtras({ isGlobal: true }, (definition, extras) => ({ ...definition, global: extras.isGlobal }))
  .build();
