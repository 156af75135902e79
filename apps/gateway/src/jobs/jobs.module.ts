import { Module } from '@nestjs/common';
import { JobQueueModule } from '@redwing/job-queue';
import { BoardExportProcessor, EXPORTS_QUEUE } from './board-export.processor';
import { JobsController } from './jobs.controller';

/** The `exports` queue, its processor (only runs when `JOB_QUEUE_ROLE` is `worker`) and the job routes. */
@Module({
  imports: [JobQueueModule.registerQueue({ name: EXPORTS_QUEUE, attempts: 3 })],
  controllers: [JobsController],
  providers: [BoardExportProcessor],
})
export class JobsModule {}
