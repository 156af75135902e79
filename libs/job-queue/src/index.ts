export { JobQueueModule } from './job-queue.module';
export { JobQueueService } from './job-queue.service';
export { JobQueue } from './job-queue';
export { Processor, Process, InjectQueue, getQueueToken } from './job-queue.decorators';
export {
  JobQueueConfigError,
  JobQueueUnavailableError,
  JobQueueDurabilityError,
  JobNotFoundError,
} from './job-queue.errors';
export { JOB_QUEUE_ENV_VARS } from './job-queue.config';
export { idempotencyKeyOf } from './job-meta';
export { UnrecoverableError, type Job } from 'bullmq';
export type * from './job-queue.interfaces';
