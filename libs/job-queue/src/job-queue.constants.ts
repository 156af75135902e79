/** The handler name `@Process()` without a name registers: it takes every job no named handler takes. */
export const ANY_JOB = '*';

/** Queue names: safe in Redis keys and in BullMQ (no `:`, no braces). */
export const QUEUE_NAME_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

/** BullMQ name of a queue's dead-letter queue (BullMQ forbids `:` in names; its keys are `…{<name>}:dlq:*`). */
export const DLQ_QUEUE_NAME = 'dlq';

/** Prefix of the job id derived from an idempotency key. */
export const IDEMPOTENT_ID_PREFIX = 'idem-';

/** States a queue reports counts for (BullMQ's, plus `dead-lettered` for the DLQ size). */
export const JOB_STATES = [
  'waiting',
  'active',
  'delayed',
  'prioritized',
  'waiting-children',
  'completed',
  'failed',
] as const;

/** Defaults of the module options (durations in ms). */
export const JOB_QUEUE_DEFAULTS = {
  role: 'worker',
  attempts: 3,
  backoff: { type: 'exponential', delay: 1_000, jitter: 0.5 },
  idempotencyWindow: 86_400_000,
  completedRetention: { age: 3_600_000, count: 1_000 },
  failedRetention: { age: 604_800_000 },
  drainTimeout: 10_000,
  enqueueTimeout: 2_000,
  durabilityGuard: 'refuse',
  lockDuration: 30_000,
  stalledInterval: 30_000,
  maxStalledCount: 1,
  concurrency: 1,
} as const;

/** Message BullMQ gives a job that stalled more than `maxStalledCount` times (a crashing worker). */
export const STALLED_LIMIT_MESSAGE = /stalled more than allowable limit/;
