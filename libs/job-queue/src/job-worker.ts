import { Logger } from '@nestjs/common';
import { describeRedisError, runInSpan, type RedisConnection } from '@redwing/redis';
import { DelayedError, UnrecoverableError, Worker, type Job } from 'bullmq';
import { ANY_JOB, STALLED_LIMIT_MESSAGE } from './job-queue.constants';
import type { JobContext, JobHandler, JobWorkerState } from './job-queue.interfaces';
import type { JobQueueMetrics } from './job-queue.metrics';
import type { JobQueue } from './job-queue';
import { decodeJobMeta, metaContext, metaIdempotencyKey, withContext } from './job-meta';

/** A processor as the explorer found it. @internal */
export interface ProcessorBinding {
  className: string;
  concurrency: number;
  handlers: Map<string, JobHandler>;
}

/**
 * Runs one `@Processor()` class on one queue with a BullMQ `Worker`: dispatches jobs to named handlers,
 * carries the producer's trace context into the consumer span, dead-letters jobs that fail for good, and
 * drains on shutdown (stop fetching, let active jobs finish within the drain timeout, leave the rest locked
 * for the stall checker of another instance). @internal
 */
export class JobWorker {
  readonly worker: Worker;
  private readonly logger: Logger;
  private readonly active = new Set<Promise<unknown>>();
  private readonly abort = new AbortController();
  private draining = false;
  private readonly metrics: JobQueueMetrics;
  private lastError = 0;
  /** The worker connection closed and has not been ready since. */
  private down = false;
  /** The connection is back, and the fetch loop has not shown life since. */
  private recovering = false;
  private restartTimer?: NodeJS.Timeout;
  /** Times this worker fetched again after its Redis connection was lost. */
  recoveries = 0;

  constructor(
    private readonly queue: JobQueue,
    private readonly binding: ProcessorBinding,
    deps: { connection: RedisConnection; prefix: string; metrics: JobQueueMetrics },
  ) {
    const c = queue.config;
    this.logger = new Logger(`JobWorker:${c.name}`);
    const metrics = deps.metrics;
    this.metrics = metrics;
    this.worker = new Worker(c.name, (job, token) => this.run(job, token, metrics), {
      connection: deps.connection,
      prefix: deps.prefix,
      concurrency: binding.concurrency,
      lockDuration: c.worker.lockDuration,
      stalledInterval: c.worker.stalledInterval,
      maxStalledCount: c.worker.maxStalledCount,
      runRetryDelay: 1_000,
      autorun: false,
      ...(c.limiter ? { limiter: c.limiter } : {}),
    });
    this.worker.on('error', (err) => {
      // Connection errors repeat while Redis is away; one line per 10 s is enough.
      const now = Date.now();
      if (now - this.lastError > 10_000) {
        this.lastError = now;
        this.logger.warn(`worker: ${describeRedisError(err)} (resumes by itself when Redis is back)`);
      }
    });
    this.worker.on('stalled', () => metrics.outcome(c.name, 'stalled'));
    this.worker.on('failed', (job, err) => {
      if (!job) return;
      const final =
        err.name === 'UnrecoverableError' ||
        STALLED_LIMIT_MESSAGE.test(err.message) ||
        job.attemptsMade >= (job.opts.attempts ?? 1);
      metrics.outcome(c.name, final ? 'failed' : 'retried');
      // Thrown errors were dead-lettered by run(); a job that crashed its workers too often never got there.
      if (STALLED_LIMIT_MESSAGE.test(err.message)) void this.deadLetter(job, err);
    });
    // Recovered = the fetch loop shows life after the connection came back: a job fetched ('active') or the
    // queue found empty ('drained'). Connection events alone would report a worker whose loop hangs as running.
    const conn = deps.connection;
    conn.on('close', () => {
      if (!this.draining) this.down = true;
    });
    conn.on('ready', () => {
      if (!this.down || this.draining) return;
      this.down = false;
      this.recovering = true;
      // BullMQ emits 'drained' only when the queue was not already found empty: let an idle worker say so again.
      (this.worker as unknown as { drained?: boolean }).drained = false;
    });
    const alive = () => {
      if (!this.recovering || this.down) return;
      this.recovering = false;
      this.recoveries++;
      metrics.recovered(c.name);
      this.logger.log(`worker: Redis is back and jobs are fetched again (recovery ${this.recoveries})`);
    };
    this.worker.on('active', alive);
    this.worker.on('drained', alive);
  }

  /** Start fetching jobs; started again (after a second) if BullMQ's loop ever ends while not draining. */
  start(): void {
    this.worker.run().then(
      () => this.restartUnlessDraining('worker loop ended'),
      (err: unknown) => this.restartUnlessDraining(`worker stopped: ${describeRedisError(err)}`),
    );
  }

  private restartUnlessDraining(why: string): void {
    if (this.draining || this.worker.closing !== undefined) return;
    this.logger.error(`${why}; starting it again in 1 s`);
    this.restartTimer = setTimeout(() => {
      if (!this.draining && !this.worker.isRunning()) this.start();
    }, 1_000);
  }

  /**
   * `running` (fetching), `reconnecting` (its Redis connection was lost, and no fetch has completed since; it
   * resumes by itself), or `stopped`
   * (drained, or its loop ended and is being started again).
   */
  get state(): JobWorkerState {
    if (this.draining || !this.worker.isRunning()) return 'stopped';
    return this.down || this.recovering ? 'reconnecting' : 'running';
  }

  /** The queue this worker processes. */
  get queueName(): string {
    return this.queue.name;
  }

  /** Jobs this instance is running now. */
  get activeCount(): number {
    return this.active.size;
  }

  /**
   * Stop fetching, wait up to `timeout` ms for active jobs, then close. Jobs still running keep their Redis
   * lock until it expires; another instance's stall checker then puts them back in the queue.
   * @returns how many jobs were still active when the timeout passed
   */
  async drain(timeout: number): Promise<number> {
    this.draining = true;
    clearTimeout(this.restartTimer);
    await this.worker.pause(true).catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>(
      (resolve) => (timer = setTimeout(() => resolve('timeout'), timeout)),
    );
    const idle = (async () => {
      while (this.active.size > 0) await Promise.allSettled([...this.active]);
    })();
    const outcome = await Promise.race([idle, timedOut]);
    clearTimeout(timer);
    const left = outcome === 'timeout' ? this.active.size : 0;
    if (left > 0) {
      this.logger.warn(
        `${left} job(s) still running after the ${timeout} ms drain; the stall checker will recover them`,
      );
      this.abort.abort();
    }
    await this.worker.close(true).catch(() => undefined);
    return left;
  }

  private async run(job: Job, token: string | undefined, metrics: JobQueueMetrics): Promise<unknown> {
    const c = this.queue.config;
    if (this.draining) {
      // Fetched while the drain began: hand it back untouched (no attempt used).
      await job.moveToDelayed(Date.now(), token);
      throw new DelayedError();
    }
    const handler = this.binding.handlers.get(job.name) ?? this.binding.handlers.get(ANY_JOB);
    if (!handler) {
      const err = new UnrecoverableError(
        `${this.binding.className} has no @Process('${job.name}') handler (and no @Process() catch-all)`,
      );
      await this.deadLetter(job, err);
      throw err;
    }
    const attempt = job.attemptsMade + 1;
    const attempts = job.opts.attempts ?? 1;
    const meta = decodeJobMeta(job);
    const context: JobContext = {
      idempotencyKey: metaIdempotencyKey(meta),
      attempt,
      isFinalAttempt: attempt >= attempts,
      signal: this.abort.signal,
    };
    const started = Date.now();
    const due = job.timestamp + (job.delay ?? 0);
    const span = () =>
      runInSpan(
        'job-queue.process',
        { 'job.queue': c.name, 'job.name': job.name, 'job.id': job.id ?? '', 'job.attempt': attempt },
        () => handler(job, context),
      );
    let tracked: Promise<unknown>;
    try {
      // A handler that throws synchronously is handled like one that rejects.
      tracked = Promise.resolve(meta.tp ? withContext(metaContext(meta), span) : span());
    } catch (err) {
      tracked = Promise.reject(err);
    }
    this.active.add(tracked);
    try {
      const result = await tracked;
      metrics.outcome(c.name, 'completed');
      return result;
    } catch (err) {
      if (
        err instanceof UnrecoverableError ||
        (err as Error)?.name === 'UnrecoverableError' ||
        attempt >= attempts
      ) {
        // Before BullMQ marks it failed, so a crash in between cannot lose the dead letter.
        await this.deadLetter(job, err);
      }
      throw err;
    } finally {
      this.active.delete(tracked);
      metrics.timing(c.name, Date.now() - started, started - due);
    }
  }

  private async deadLetter(job: Job, err: unknown): Promise<void> {
    try {
      await this.queue.deadLetter(job, err);
      this.metrics.outcome(this.queue.name, 'dead-lettered');
    } catch (e) {
      this.logger.warn(
        `could not dead-letter job ${job.id} yet (${describeRedisError(e)}); it stays failed in the queue`,
      );
    }
  }
}
