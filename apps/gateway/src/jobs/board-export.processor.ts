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
 * Exports a board in `STEPS` simulated steps, reporting progress (0–100) after each; progress and completion
 * are also published on the pub/sub channel `job:<id>` when `PubSubModule` is loaded.
 */
@Injectable()
@Processor({ queue: EXPORTS_QUEUE, concurrency: 4 })
export class BoardExportProcessor {
  private readonly logger = new Logger('BoardExport');

  constructor(@Optional() private readonly pubsub?: PubSubService) {}

  @Process('board-export')
  async export(job: Job<BoardExportData>, ctx: JobContext): Promise<BoardExportResult> {
    for (let step = 1; step <= STEPS; step++) {
      if (ctx.signal.aborted) throw new Error('export interrupted by shutdown; it will be retried');
      await new Promise((resolve) => setTimeout(resolve, job.data.stepMs));
      const progress = Math.round((step / STEPS) * 100);
      await job.updateProgress(progress);
      this.publish(job.id!, { type: 'progress', progress });
    }
    const result: BoardExportResult = {
      boardId: job.data.boardId,
      format: 'json',
      url: `/exports/board-${job.data.boardId}-${job.id}.json`,
      steps: STEPS,
      generatedAt: new Date().toISOString(),
    };
    this.publish(job.id!, { type: 'completed', result });
    return result;
  }

  private publish(id: string, message: object): void {
    // Live updates are best effort; GET /jobs/:id is the source of truth.
    this.pubsub
      ?.publish(`job:${id}`, message)
      .catch((err: unknown) => this.logger.debug(`publish: ${String(err)}`));
  }
}
