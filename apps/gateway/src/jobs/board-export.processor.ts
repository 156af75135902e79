import { Injectable, Logger, Optional } from '@nestjs/common';
import { Process, Processor, type Job, type JobContext } from '@redwing/job-queue';
import { PubSubService } from '@redwing/pubsub';

/** Name of the gateway's export queue. */
export const EXPORTS_QUEUE = 'exports';

/** Data of a board-export job. */
export interface BoardExportData {
  boardId: number;
  /** Simulated time per step, in ms. */
  stepMs: number;
}

/** Result of a board export. */
export interface BoardExportResult {
  boardId: number;
  format: 'json';
  url: string;
  steps: number;
  generatedAt: string;
}

const STEPS = 5;

/**
 * Exports a board in `STEPS` simulated steps, reporting progress (0–100) after each. When `PubSubModule` is
 * loaded, each step, the completion and a failed attempt are also published as resumable events on the
 * channel `job:<id>` (what `/live` sockets follow): `job.progress {jobId, progress}`, `job.completed {jobId,
 * result}`, `job.failed {jobId, error, attempt, final}` (`final`: no retry follows, the job is dead-lettered).
 */
@Injectable()
@Processor({ queue: EXPORTS_QUEUE, concurrency: 4 })
export class BoardExportProcessor {
  private readonly logger = new Logger('BoardExport');

  constructor(@Optional() private readonly pubsub?: PubSubService) {}

  @Process('board-export')
  async export(job: Job<BoardExportData>, ctx: JobContext): Promise<BoardExportResult> {
    const jobId = job.id!;
    try {
      for (let step = 1; step <= STEPS; step++) {
        if (ctx.signal.aborted) throw new Error('export interrupted by shutdown; it will be retried');
        await new Promise((resolve) => setTimeout(resolve, job.data.stepMs));
        const progress = Math.round((step / STEPS) * 100);
        await job.updateProgress(progress);
        this.publish(jobId, 'job.progress', { jobId, progress });
      }
    } catch (err) {
      const error = (err as Error)?.message ?? String(err);
      this.publish(jobId, 'job.failed', { jobId, error, attempt: ctx.attempt, final: ctx.isFinalAttempt });
      throw err;
    }
    const result: BoardExportResult = {
      boardId: job.data.boardId,
      format: 'json',
      url: `/exports/board-${job.data.boardId}-${jobId}.json`,
      steps: STEPS,
      generatedAt: new Date().toISOString(),
    };
    this.publish(jobId, 'job.completed', { jobId, result });
    return result;
  }

  private publish(id: string, type: string, data: object): void {
    // Live updates are best effort (resumable: a socket that subscribes late can ask from lastEventId "0-0");
    // GET /jobs/:id is the source of truth.
    this.pubsub
      ?.publishEvent(`job:${id}`, { type, data })
      .catch((err: unknown) => this.logger.debug(`publish: ${String(err)}`));
  }
}
