import {
  Controller,
  Get,
  HttpCode,
  NotFoundException,
  Param,
  ParseIntPipe,
  Post,
  Query,
  UseFilters,
} from '@nestjs/common';
import { InjectQueue, JobNotFoundError, type JobQueue } from '@redwing/job-queue';
import { EXPORTS_QUEUE, type BoardExportData } from './board-export.processor';
import { JobQueueUnavailableFilter } from './job-queue-unavailable.filter';
import { singleQuery } from '../http/query-params';

const JOB_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** Board exports through the job queue, job status, and the dead-letter queue (DESIGN §4). */
@Controller()
@UseFilters(JobQueueUnavailableFilter)
export class JobsController {
  constructor(@InjectQueue(EXPORTS_QUEUE) private readonly exports: JobQueue) {}

  /** Enqueue an export of board `id` → 202 `{ jobId }`; 503 + Retry-After when the queue's Redis is down. */
  @Post('boards/:id/export')
  @HttpCode(202)
  async export(@Param('id', ParseIntPipe) id: number): Promise<{ jobId: string }> {
    const data: BoardExportData = { boardId: id, stepMs: 100 };
    const job = await this.exports.add('board-export', data);
    return { jobId: job.id! };
  }

  /** The dead letters of the export queue (oldest first, `limit` ≤ 100). */
  @Get('jobs/dlq')
  async deadLetters(@Query('limit') limit?: unknown) {
    const n = Math.min(100, Math.max(1, Number(singleQuery('limit', limit)) || 50));
    // Size first, then the page: a letter added in between shows in the page, never a size with its letter missing.
    const size = await this.exports.deadLetterCount();
    const letters = await this.exports.deadLetters(0, n);
    return { queue: this.exports.deadLetterName, size, items: letters };
  }

  /** Replay one dead letter → `{ jobId }` it now runs under; 404 when there is no such dead letter. */
  @Post('jobs/dlq/:id/replay')
  @HttpCode(202)
  async replay(@Param('id') id: string): Promise<{ jobId: string }> {
    if (!JOB_ID.test(id)) throw new NotFoundException(`No dead letter "${id.slice(0, 64)}"`);
    try {
      return { jobId: await this.exports.replayDeadLetter(id) };
    } catch (err) {
      if (err instanceof JobNotFoundError) throw new NotFoundException(err.message);
      throw err;
    }
  }

  /** Job state, progress, and result or error; 404 when unknown. */
  @Get('jobs/:id')
  async status(@Param('id') id: string) {
    const status = JOB_ID.test(id) ? await this.exports.describe(id) : undefined;
    if (!status) throw new NotFoundException(`No job "${id.slice(0, 64)}" (it may have expired)`);
    return status;
  }

  /** Counts per state and the dead-letter queue size (the dashboard's queue panel). */
  @Get('jobs')
  async counts() {
    return { queue: EXPORTS_QUEUE, counts: await this.exports.getCounts() };
  }
}
