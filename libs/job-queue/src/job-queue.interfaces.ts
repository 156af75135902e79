import type {
  Job,
  JobsOptions,
  JobSchedulerTemplateOptions,
  RateLimiterOptions,
  RepeatOptions,
} from 'bullmq';
import type { JOB_STATES } from './job-queue.constants';

/**
 * What this instance does: `worker` runs the `@Processor()` classes of its registered queues (and can enqueue);
 * `producer` only enqueues and reads (an HTTP tier that must never run jobs).
 */
export type JobQueueRole = 'worker' | 'producer';

/**
 * What happens when the queue's Redis may evict keys (`maxmemory-policy` other than `noeviction`), which
 * silently loses jobs: `refuse` stops start-up with `JobQueueDurabilityError` (when Redis is reachable at
 * start-up; later it reports DOWN and refuses enqueues), `unhealthy` starts but reports DOWN with the reason
 * and refuses enqueues, `warn` only logs.
 */
export type DurabilityGuardMode = 'refuse' | 'unhealthy' | 'warn';

/** Retry delay between attempts (BullMQ's built-in strategies). */
export interface JobBackoffOptions {
  /** @default 'exponential' (delay × 2^(attempt-1)) */
  type?: 'exponential' | 'fixed';
  /** Base delay in ms. @default 1_000 */
  delay?: number;
  /** Random part of each delay, 0–1 (0.5 = the delay is drawn from 50–100 % of its value). @default 0.5 */
  jitter?: number;
}

/** How long finished jobs are kept in Redis (whichever limit is reached first). */
export interface JobRetentionOptions {
  /** Keep at most this long, in ms. */
  age?: number;
  /** Keep at most this many. */
  count?: number;
}

/** Worker tuning, passed to BullMQ's `Worker` (durations in ms). */
export interface JobWorkerOptions {
  /** How long a job's lock lives without renewal; a crashed worker's jobs are recovered after it. @default 30_000 */
  lockDuration?: number;
  /** How often each worker looks for stalled jobs (locks that expired). @default 30_000 */
  stalledInterval?: number;
  /** How many times a job may stall (its worker died) before it fails for good. @default 1 */
  maxStalledCount?: number;
}

/** Settings shared by every queue, overridable per queue in `registerQueue`. */
export interface JobQueueSharedOptions {
  /** Attempts per job before it is dead-lettered (1 = no retry). @default 3 */
  attempts?: number;
  /** Delay between attempts. @default exponential, 1_000 ms, jitter 0.5 */
  backoff?: JobBackoffOptions;
  /** Completed jobs kept. @default { age: 3_600_000, count: 1_000 } */
  completedRetention?: JobRetentionOptions;
  /** Failed jobs kept in the queue (their dead letters are kept until replayed or purged). @default { age: 604_800_000 } */
  failedRetention?: JobRetentionOptions;
  /** Worker tuning (locks, stall checks). */
  worker?: JobWorkerOptions;
}

/** Options of `JobQueueModule.forRoot()`. Environment variables fill unset fields (see the README). */
export interface JobQueueModuleOptions extends JobQueueSharedOptions {
  /**
   * Named `RedisClientModule` client the queues run on.
   * @default 'durable' when the app configured one, else 'default'
   */
  client?: string;
  /** @default 'worker' (env `JOB_QUEUE_ROLE`) */
  role?: JobQueueRole;
  /** Key prefix of the queues; a queue's keys are `<prefix>:{<queue>}:…`. @default `<redis keyPrefix>:job-queue` */
  prefix?: string;
  /**
   * How long an idempotency key returns the same job, in ms, counted from the first add (also after the job
   * completed or was removed). @default 86_400_000 (24 h; env `JOB_QUEUE_IDEMPOTENCY_WINDOW`)
   */
  idempotencyWindow?: number;
  /** Time active jobs get to finish on shutdown before they are left to the stall checker, in ms. @default 10_000 */
  drainTimeout?: number;
  /** Time an enqueue may take before it fails with `JobQueueUnavailableError`, in ms. @default 2_000 */
  enqueueTimeout?: number;
  /** @default 'refuse' (env `JOB_QUEUE_DURABILITY_GUARD`) */
  durabilityGuard?: DurabilityGuardMode;
  /** Read `JOB_QUEUE_*` environment variables. @default true */
  useEnv?: boolean;
}

/** Options of `JobQueueModule.registerQueue()`. */
export interface RegisterQueueOptions extends JobQueueSharedOptions {
  /** Queue name (1–64 of `A-Z a-z 0-9 _ . -`). */
  name: string;
  /** Queue-wide rate limit across every worker: at most `max` jobs per `duration` ms (BullMQ `limiter`). */
  limiter?: RateLimiterOptions;
}

/** Options of one `add()`: BullMQ's job options plus an idempotency key. */
export interface JobAddOptions extends Omit<JobsOptions, 'deduplication' | 'telemetry' | 'repeat'> {
  /**
   * Adding again with the same key within `idempotencyWindow` returns the first job (whatever its state)
   * instead of creating one. The processor receives it as `context.idempotencyKey`. Any string up to 512 chars.
   */
  idempotencyKey?: string;
}

/** One job for `addBulk()`. */
export interface BulkJob<T = unknown> {
  name: string;
  data: T;
  opts?: JobAddOptions;
}

/** What a handler gets beside the job. */
export interface JobContext {
  /** The idempotency key the job was added with, for exactly-once effects. */
  idempotencyKey?: string;
  /** This attempt, from 1. */
  attempt: number;
  /** Whether a failure now dead-letters the job. */
  isFinalAttempt: boolean;
  /** Aborted when the worker shuts down and the drain timeout passed. */
  signal: AbortSignal;
}

/** A handler of named jobs (`@Process('welcome')`). */
export type JobHandler<T = any, R = unknown> = (job: Job<T>, context: JobContext) => Promise<R> | R;

/** Options of `@Processor()`. */
export interface ProcessorOptions {
  /** Queue to process (registered with `registerQueue`). */
  queue: string;
  /** Jobs run at once by this instance. @default 1 */
  concurrency?: number;
}

/** A job's state, BullMQ's, plus `dead-lettered` for one only found in the dead-letter queue. */
export type JobState = (typeof JOB_STATES)[number] | 'dead-lettered' | 'unknown';

/** What `describe()` / `GET /jobs/:id` show of a job. */
export interface JobStatus {
  id: string;
  queue: string;
  name: string;
  state: JobState;
  progress: number | object | string | boolean;
  /** The handler's return value, when completed. */
  result?: unknown;
  /** The last error, when failed. */
  error?: string;
  attemptsMade: number;
  /** Epoch ms. */
  createdAt: number;
  processedAt?: number;
  finishedAt?: number;
}

/** Job counts of a queue per state, and the dead-letter queue size. */
export type JobCounts = Record<(typeof JOB_STATES)[number] | 'dead-lettered', number>;

/** One entry of a dead-letter queue. */
export interface DeadLetter {
  /** The original job's id (replay keeps it). */
  id: string;
  queue: string;
  name: string;
  data: unknown;
  /** Last error message, name and stack. */
  error: { name: string; message: string; stack?: string };
  attemptsMade: number;
  /** Epoch ms when it was dead-lettered. */
  failedAt: number;
  idempotencyKey?: string;
}

/** A repeating job (BullMQ job scheduler): `every` ms or a cron `pattern`. */
export interface JobSchedule<T = unknown> {
  /** `pattern` (cron, with optional `tz`) or `every` (ms), and limits; BullMQ's `RepeatOptions`. */
  repeat: Omit<RepeatOptions, 'key'>;
  /** Job name and data each run gets. */
  name: string;
  data?: T;
  opts?: JobSchedulerTemplateOptions;
}

/**
 * What a worker of this instance is doing: `running` (fetching and processing), `reconnecting` (its Redis
 * connection was lost, and it has not fetched since — a job, or found the queue empty; it resumes by itself when
 * Redis is back), `stopped` (drained at shutdown, or its
 * fetch loop ended and is being started again).
 */
export type JobWorkerState = 'running' | 'reconnecting' | 'stopped';

/** One `@Processor()` worker of this instance, for readiness. */
export interface JobWorkerHealth {
  queue: string;
  state: JobWorkerState;
  /** Times it fetched again (a job, or found the queue empty) after its Redis connection was lost. */
  recoveries: number;
  /** Jobs it is running now. */
  active: number;
}

/** Health of the job queues, for readiness. */
export interface JobQueueHealth {
  /** `down`: enqueues are refused (eviction policy, or Redis unreachable). */
  status: 'up' | 'degraded' | 'down';
  /** Why it is not `up`. */
  reason?: string;
  role: JobQueueRole;
  client: string;
  /** Redis `maxmemory-policy` of the queue's Redis, when it was checked. */
  maxmemoryPolicy?: string;
  /** Whether AOF persistence is on, when it was checked. */
  aof?: boolean;
  /** The workers of this instance (empty for the `producer` role). */
  workers: JobWorkerHealth[];
}
