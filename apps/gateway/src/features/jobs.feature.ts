import type { DynamicModule, Type } from '@nestjs/common';
import { JobQueueModule } from '@redwing/job-queue';
import { JobsModule } from '../jobs/jobs.module';

/**
 * Modules the job-queue feature adds to the gateway (app.module.ts imports this list): `JobQueueModule`
 * (global; on the `durable` Redis client when `REDIS_DURABLE_URL` is set; `JOB_QUEUE_*` variables — role,
 * attempts, drain timeout, durability guard — are read by the lib) and the export/job routes.
 */
export const jobsFeature: Array<Type<unknown> | DynamicModule> = [
  JobQueueModule.forRoot({ isGlobal: true }),
  JobsModule,
];
