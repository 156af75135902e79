/** The module options, a `registerQueue()` or a `@Processor()` is invalid. The message names the field. */
export class JobQueueConfigError extends Error {
  override readonly name = 'JobQueueConfigError';

  constructor(
    /** Dotted path of the offending field, e.g. `attempts` or `@Processor(EmailsProcessor).concurrency`. */
    readonly field: string,
    message: string,
  ) {
    super(`Invalid job queue configuration: ${field} ${message}`);
  }
}

/**
 * A job could not be enqueued (or a queue operation could not run) because the queue's Redis is unreachable,
 * slow, or unsafe (evicting keys). Nothing was silently dropped: the caller decides (HTTP 503 with
 * `Retry-After: retryAfter`). When `outcomeUnknown` is true the command may have reached Redis; retrying with
 * the same `idempotencyKey` cannot create a second job.
 */
export class JobQueueUnavailableError extends Error {
  override readonly name = 'JobQueueUnavailableError';

  constructor(
    readonly queue: string,
    /** Why: `disconnected`, `breaker-open`, `timeout`, `eviction-policy`, `closed`, or the Redis error. */
    readonly reason: string,
    /** Seconds after which a retry may succeed. */
    readonly retryAfter: number,
    readonly outcomeUnknown = false,
    options?: { cause?: unknown },
  ) {
    super(
      `Job queue "${queue}" is unavailable (${reason}); the job was ${outcomeUnknown ? 'maybe ' : 'not '}enqueued. ` +
        `Retry in ${retryAfter} s${outcomeUnknown ? ' with the same idempotencyKey' : ''}.`,
      options,
    );
  }
}

/** Start-up refused: the queue's Redis may evict keys (`maxmemory-policy` is not `noeviction`), which loses jobs. */
export class JobQueueDurabilityError extends Error {
  override readonly name = 'JobQueueDurabilityError';

  constructor(
    readonly client: string,
    readonly maxmemoryPolicy: string,
  ) {
    super(
      `Redis client "${client}" has maxmemory-policy "${maxmemoryPolicy}": it may evict queued jobs. ` +
        `Set "maxmemory-policy noeviction" on that Redis (or run the queues on a "durable" client that has it), ` +
        `or set durabilityGuard: 'unhealthy' | 'warn' to start anyway.`,
    );
  }
}

/** No job (or dead letter) with that id in the queue. */
export class JobNotFoundError extends Error {
  override readonly name = 'JobNotFoundError';

  constructor(
    readonly queue: string,
    readonly id: string,
    where = 'queue',
  ) {
    super(`No job "${id}" in the ${where} of "${queue}"; it may have been removed (see retention).`);
  }
}
