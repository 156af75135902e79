import { Logger } from '@nestjs/common';
import { describeRedisError, isRedisUnavailable } from '@redwing/redis';
import {
  Queue,
  type ConnectionOptions,
  type Job,
  type JobsOptions,
  type JobType,
  type KeepJobs,
} from 'bullmq';
import { createHash } from 'node:crypto';
import { DLQ_QUEUE_NAME, IDEMPOTENT_ID_PREFIX, JOB_STATES } from './job-queue.constants';
import type { ResolvedQueueConfig } from './job-queue.config';
import { JobNotFoundError, JobQueueUnavailableError } from './job-queue.errors';
import type {
  BulkJob,
  DeadLetter,
  JobAddOptions,
  JobCounts,
  JobSchedule,
  JobState,
  JobStatus,
} from './job-queue.interfaces';
import type { JobQueueMetrics } from './job-queue.metrics';
import { encodeJobMeta, idempotencyKeyOf } from './job-meta';

/** What a `JobQueue` needs from the module (connections, guard, metrics). @internal */
export interface JobQueueDeps {
  /** The shared producer connection (an ioredis instance). */
  connection: ConnectionOptions;
  /** BullMQ prefix of this queue, with the queue name as hash tag: `<prefix>:{<name>}`. */
  prefix: string;
  idempotencyWindow: number;
  enqueueTimeout: number;
  /** Why operations must be refused now (Redis unreachable, eviction policy), or undefined. */
  refusal: () => string | undefined;
  metrics: JobQueueMetrics;
}

/** The DLQ job's data: the original job and why it died. */
interface DeadLetterEnvelope {
  name: string;
  data: unknown;
  opts: JobsOptions;
  error: DeadLetter['error'];
  attemptsMade: number;
  failedAt: number;
}

const RETRY_AFTER_SECONDS = 5;
/** BullMQ refuses integer custom ids, and the original ids are often integers: dead letters get `dl-<id>`. */
const deadId = (id: string): string => `dl-${id}`;
const PAGE = 500;

/**
 * One registered queue: enqueue, inspect, pause, retry, remove, schedule, and its dead-letter queue
 * (`<name>:dlq`). Get it with `@InjectQueue('<name>')` or `JobQueueService.queue('<name>')`. Every operation
 * fails closed with `JobQueueUnavailableError` while the queue's Redis is unreachable or unsafe — never a
 * silent drop.
 */
export class JobQueue {
  /** BullMQ's queue, for what this class does not wrap (use with care: it bypasses the fail-closed checks). */
  readonly queue: Queue;
  /** BullMQ queue holding the dead letters (keys `<prefix>:{<name>}:dlq:*`). */
  readonly deadLetterQueue: Queue;
  /** The dead-letter queue's name as shown to users. */
  readonly deadLetterName: string;
  private readonly logger: Logger;

  constructor(
    readonly config: ResolvedQueueConfig,
    private readonly deps: JobQueueDeps,
  ) {
    const c = config;
    this.logger = new Logger(`JobQueue:${c.name}`);
    this.deadLetterName = `${c.name}:dlq`;
    this.queue = new Queue(c.name, {
      connection: deps.connection,
      prefix: deps.prefix,
      defaultJobOptions: {
        attempts: c.attempts,
        // Only where a retry can happen: every job stores its options, and every fetch parses them.
        ...(c.attempts > 1 ? { backoff: c.backoff } : {}),
        removeOnComplete: retentionOption(c.completedRetention),
        removeOnFail: retentionOption(c.failedRetention),
      },
    });
    this.deadLetterQueue = new Queue(DLQ_QUEUE_NAME, { connection: deps.connection, prefix: deps.prefix });
    for (const q of [this.queue, this.deadLetterQueue]) {
      q.on('error', (err) => this.logger.debug(`queue connection: ${describeRedisError(err)}`));
    }
  }

  get name(): string {
    return this.config.name;
  }

  /**
   * Enqueue a job. With `idempotencyKey`, the same key within `idempotencyWindow` returns the first job
   * (whatever its state) instead of a new one.
   * @returns the stored job (for a repeated key: the first one, when it is still retained)
   * @throws JobQueueUnavailableError when Redis is unreachable, slow or evicting (HTTP 503)
   */
  async add<T = unknown>(name: string, data: T, opts: JobAddOptions = {}): Promise<Job<T>> {
    const jobOpts = this.jobOptions(opts);
    const job = await this.guarded('add', () => this.queue.add(name, data, jobOpts) as Promise<Job<T>>);
    this.deps.metrics.enqueue(this.name, 'accepted');
    if (opts.idempotencyKey === undefined) return job;
    return ((await this.guarded('getJob', () => this.queue.getJob(job.id!))) as Job<T> | undefined) ?? job;
  }

  /**
   * Enqueue several jobs in one round trip (atomically on standalone Redis).
   * @throws JobQueueUnavailableError as `add`
   */
  async addBulk<T = unknown>(jobs: ReadonlyArray<BulkJob<T>>): Promise<Array<Job<T>>> {
    const list = jobs.map((j) => ({ name: j.name, data: j.data, opts: this.jobOptions(j.opts ?? {}) }));
    const added = await this.guarded('addBulk', () => this.queue.addBulk(list) as Promise<Array<Job<T>>>);
    this.deps.metrics.enqueue(this.name, 'accepted', added.length);
    return added;
  }

  /** The job with this id, or undefined. @throws JobQueueUnavailableError */
  async getJob<T = unknown>(id: string): Promise<Job<T> | undefined> {
    return (await this.guarded('getJob', () => this.queue.getJob(id))) as Job<T> | undefined;
  }

  /**
   * State, progress, result or error of a job; a job found only in the dead-letter queue is `dead-lettered`.
   * @throws JobQueueUnavailableError
   */
  async describe(id: string): Promise<JobStatus | undefined> {
    return this.guarded('describe', async () => {
      // State first: a job read before its state could show an attempt count older than the state.
      const state = (await this.queue.getJobState(id)) as JobState;
      const job = state === 'unknown' ? undefined : await this.queue.getJob(id);
      if (job) {
        const dead = state === 'failed' ? await this.deadLetterQueue.getJob(deadId(id)) : undefined;
        return statusOf(this.name, job, dead ? 'dead-lettered' : state);
      }
      const dead = await this.deadLetterQueue.getJob(deadId(id));
      if (!dead) return undefined;
      const letter = deadLetterOf(this.name, dead);
      return {
        id,
        queue: this.name,
        name: letter.name,
        state: 'dead-lettered',
        progress: 0,
        error: letter.error.message,
        attemptsMade: letter.attemptsMade,
        createdAt: dead.timestamp,
        finishedAt: letter.failedAt,
      };
    });
  }

  /** Job counts per state and the dead-letter queue size. @throws JobQueueUnavailableError */
  async getCounts(): Promise<JobCounts> {
    return this.guarded('getCounts', async () => {
      const [counts, dead] = await Promise.all([
        this.queue.getJobCounts(...(JOB_STATES as unknown as JobType[])),
        this.deadLetterQueue.getJobCountByTypes('waiting'),
      ]);
      const out = { 'dead-lettered': dead } as JobCounts;
      for (const state of JOB_STATES) out[state] = counts[state] ?? 0;
      return out;
    });
  }

  /** Stop every worker of this queue (all instances) from taking new jobs. @throws JobQueueUnavailableError */
  async pause(): Promise<void> {
    await this.guarded('pause', () => this.queue.pause());
  }

  /** Undo `pause()`. @throws JobQueueUnavailableError */
  async resume(): Promise<void> {
    await this.guarded('resume', () => this.queue.resume());
  }

  /** Whether the queue is paused. @throws JobQueueUnavailableError */
  async isPaused(): Promise<boolean> {
    return this.guarded('isPaused', () => this.queue.isPaused());
  }

  /**
   * Run a failed job again (attempts counted from zero).
   * @throws JobNotFoundError when no job has this id; JobQueueUnavailableError
   */
  async retry(id: string): Promise<void> {
    await this.guarded('retry', async () => {
      const job = await this.queue.getJob(id);
      if (!job) throw new JobNotFoundError(this.name, id);
      await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
      await this.deadLetterQueue.remove(deadId(id));
    });
  }

  /**
   * Remove a job (not an active one: BullMQ refuses while its lock is held).
   * @returns whether a job was removed
   * @throws JobQueueUnavailableError
   */
  async remove(id: string): Promise<boolean> {
    return this.guarded('remove', async () => (await this.queue.remove(id)) === 1);
  }

  /**
   * Create or replace a repeating job (BullMQ job scheduler) under `id`: cron `repeat.pattern` or
   * `repeat.every` ms. Every instance may call it at start-up; there is one scheduler per id.
   * @throws JobQueueUnavailableError
   */
  async schedule<T = unknown>(id: string, schedule: JobSchedule<T>): Promise<void> {
    await this.guarded('schedule', () =>
      this.queue.upsertJobScheduler(id, schedule.repeat, {
        name: schedule.name,
        data: schedule.data,
        opts: schedule.opts ? this.withBackoff(schedule.opts) : schedule.opts,
      }),
    );
  }

  /** Remove the repeating job `id`. @returns whether it existed. @throws JobQueueUnavailableError */
  async unschedule(id: string): Promise<boolean> {
    return this.guarded('unschedule', () => this.queue.removeJobScheduler(id));
  }

  /** Dead letters, oldest first. @throws JobQueueUnavailableError */
  async deadLetters(start = 0, count = 50): Promise<DeadLetter[]> {
    return this.guarded('deadLetters', async () => {
      const jobs = await this.deadLetterQueue.getJobs(['waiting'], start, start + count - 1, true);
      return jobs.filter((j): j is Job => !!j).map((j) => deadLetterOf(this.name, j));
    });
  }

  /** How many jobs are in the dead-letter queue. @throws JobQueueUnavailableError */
  async deadLetterCount(): Promise<number> {
    return this.guarded('deadLetterCount', () => this.deadLetterQueue.getJobCountByTypes('waiting'));
  }

  /**
   * Put a dead letter back in the queue, attempts counted from zero, and remove it from the dead-letter queue.
   * The job keeps its id while the failed original is retained (else it is added again: same id when the id
   * was custom or idempotent, a new one for BullMQ's numeric ids). Safe to repeat.
   * @returns the id the job now runs under
   * @throws JobNotFoundError when the dead-letter queue has no such id; JobQueueUnavailableError
   */
  async replayDeadLetter(id: string): Promise<string> {
    return this.guarded('replay', async () => {
      const dead = await this.deadLetterQueue.getJob(deadId(id));
      if (!dead) throw new JobNotFoundError(this.name, id, 'dead-letter queue');
      const envelope = dead.data as DeadLetterEnvelope;
      // Removed before the job runs again: a replayed job that fails again at once writes its new dead letter
      // under the same id, which an add would silently skip while the old letter still exists (and the old
      // letter's removal would then delete the only record). Put back if the replay itself fails.
      await dead.remove();
      try {
        let runsAs = id;
        const original = await this.queue.getJob(id);
        if (original) {
          if ((await original.getState()) === 'failed') {
            await original.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
          }
        } else {
          const { deduplication: _dedup, repeatJobKey: _key, jobId: _id, ...opts } = envelope.opts ?? {};
          const custom = !/^\d+$/.test(id);
          const added = await this.queue.add(
            envelope.name,
            envelope.data,
            custom ? { ...opts, jobId: id } : opts,
          );
          runsAs = added.id!;
        }
        return runsAs;
      } catch (err) {
        await this.addDeadLetter(id, envelope);
        throw err;
      }
    });
  }

  /** Replay every dead letter. @returns how many were replayed. @throws JobQueueUnavailableError */
  async replayAllDeadLetters(): Promise<number> {
    // The ids first: a replayed job that fails again comes back, and must not be replayed twice in one call.
    const ids: string[] = [];
    for (let start = 0; ; start += PAGE) {
      const page = await this.deadLetters(start, PAGE);
      ids.push(...page.map((l) => l.id));
      if (page.length < PAGE) break;
    }
    for (const id of ids) await this.replayDeadLetter(id);
    return ids.length;
  }

  /** Delete every dead letter. @returns how many were deleted. @throws JobQueueUnavailableError */
  async purgeDeadLetters(): Promise<number> {
    return this.guarded('purge', async () => {
      const n = await this.deadLetterQueue.getJobCountByTypes('waiting');
      await this.deadLetterQueue.drain(true);
      return n;
    });
  }

  /**
   * Record a job that failed for good in the dead-letter queue (idempotent: the dead letter's id is the job's).
   * @internal called by the worker
   */
  async deadLetter(job: Job, error: unknown): Promise<void> {
    const err = error instanceof Error ? error : new Error(String(error));
    const envelope: DeadLetterEnvelope = {
      name: job.name,
      data: job.data,
      opts: job.opts,
      error: { name: err.name, message: err.message, stack: err.stack },
      attemptsMade: Math.max(job.attemptsMade, job.attemptsStarted ?? 0),
      failedAt: Date.now(),
    };
    await this.addDeadLetter(job.id!, envelope);
  }

  private async addDeadLetter(id: string, envelope: DeadLetterEnvelope): Promise<void> {
    await this.deadLetterQueue.add(envelope.name, envelope, {
      jobId: deadId(id),
      removeOnComplete: true,
      removeOnFail: true,
    });
  }

  /** Close both BullMQ queues (the shared connection stays open; the module closes it). */
  async close(): Promise<void> {
    await Promise.all([this.queue.close(), this.deadLetterQueue.close()]);
  }

  /** The queue's backoff for a job that asks for retries the queue default does not have (attempts 1). */
  private withBackoff<O extends { attempts?: number; backoff?: JobsOptions['backoff'] }>(opts: O): O {
    return (opts.attempts ?? 0) > 1 && opts.backoff === undefined && this.config.attempts <= 1
      ? { ...opts, backoff: this.config.backoff }
      : opts;
  }

  private jobOptions(opts: JobAddOptions): JobsOptions {
    const { idempotencyKey, ...rest } = opts;
    const out: JobsOptions = this.withBackoff({ ...rest });
    const meta = encodeJobMeta(idempotencyKey);
    if (meta !== undefined) out.telemetry = { metadata: meta };
    if (idempotencyKey !== undefined) {
      if (typeof idempotencyKey !== 'string' || idempotencyKey.length === 0 || idempotencyKey.length > 512) {
        throw new TypeError('idempotencyKey must be a string of 1–512 characters');
      }
      const digest = createHash('sha256').update(idempotencyKey).digest('base64url').slice(0, 32);
      out.jobId = `${IDEMPOTENT_ID_PREFIX}${digest}`;
      out.deduplication = { id: out.jobId, ttl: this.deps.idempotencyWindow };
    }
    return out;
  }

  private async guarded<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    const refusal = this.deps.refusal();
    if (refusal) throw this.unavailable(operation, refusal, false);
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        fn(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(this.unavailable(operation, `no answer within ${this.deps.enqueueTimeout} ms`, true)),
            this.deps.enqueueTimeout,
          );
        }),
      ]);
    } catch (err) {
      if (err instanceof JobQueueUnavailableError) throw err;
      if (
        isRedisUnavailable(err) ||
        /Stream isn't writeable|Connection is closed|enableOfflineQueue/i.test(String(err))
      ) {
        throw this.unavailable(operation, describeRedisError(err), true, err);
      }
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  private unavailable(
    operation: string,
    reason: string,
    outcomeUnknown: boolean,
    cause?: unknown,
  ): JobQueueUnavailableError {
    if (operation === 'add' || operation === 'addBulk') this.deps.metrics.enqueue(this.name, 'rejected');
    return new JobQueueUnavailableError(
      this.name,
      reason,
      RETRY_AFTER_SECONDS,
      outcomeUnknown && operation.startsWith('add'),
      {
        cause,
      },
    );
  }
}

/** BullMQ's `removeOnComplete`/`removeOnFail`: age in seconds, or a count, or keep everything. */
function retentionOption(r: { age?: number; count?: number }): KeepJobs | number | false {
  if (r.age === undefined) return r.count ?? false;
  return { age: Math.ceil(r.age / 1000), ...(r.count !== undefined ? { count: r.count } : {}) };
}

function statusOf(queue: string, job: Job, state: JobState): JobStatus {
  return {
    id: job.id!,
    queue,
    name: job.name,
    state,
    progress: job.progress,
    ...(state === 'completed' ? { result: job.returnvalue } : {}),
    ...(job.failedReason ? { error: job.failedReason } : {}),
    attemptsMade: job.attemptsMade,
    createdAt: job.timestamp,
    ...(job.processedOn ? { processedAt: job.processedOn } : {}),
    ...(job.finishedOn ? { finishedAt: job.finishedOn } : {}),
  };
}

function deadLetterOf(queue: string, job: Job): DeadLetter {
  const e = job.data as DeadLetterEnvelope;
  return {
    id: job.id!.slice('dl-'.length),
    queue,
    name: e.name,
    data: e.data,
    error: e.error,
    attemptsMade: e.attemptsMade,
    failedAt: e.failedAt,
    idempotencyKey: idempotencyKeyOf({ opts: e.opts ?? {} }),
  };
}
