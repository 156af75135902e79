/** Why a command was refused without reaching Redis. */
export type RedisUnavailableReason = 'breaker-open' | 'forced-open' | 'disconnected' | 'closed';

/**
 * Thrown instead of queuing when Redis cannot be used right now: the circuit breaker is open, or the
 * connection is down. It is raised in well under 1 ms, before anything is sent, so the operation did not
 * happen and the caller may fall back (serve from memory, fail closed, …).
 */
export class RedisUnavailableError extends Error {
  override readonly name = 'RedisUnavailableError';
  /** Always true: nothing reached Redis, so falling back is safe. */
  readonly fallbackAllowed = true;

  constructor(
    readonly client: string,
    readonly reason: RedisUnavailableReason,
    readonly command?: string,
  ) {
    super(
      `Redis client "${client}" is unavailable (${reason}); ${command ? `"${command}" was not sent. ` : ''}` +
        `Fall back or retry later; see getHealth() for the connection state.`,
    );
  }
}

/**
 * The command was sent but no reply arrived within `commandTimeout`. Whether it ran on the server is
 * unknown; it is never sent again by Redwing.
 */
export class RedisCommandTimeoutError extends Error {
  override readonly name = 'RedisCommandTimeoutError';
  readonly fallbackAllowed = true;

  constructor(
    readonly client: string,
    readonly command: string,
    readonly timeout: number,
  ) {
    super(
      `Redis command "${command}" on client "${client}" got no reply within ${timeout} ms; it may or may not ` +
        `have run. Raise commandTimeout (REDIS_COMMAND_TIMEOUT) if Redis is healthy but slow.`,
    );
  }
}

/** The module options (or REDIS_* environment) are invalid. The message names the field and the fix. */
export class RedisConfigError extends Error {
  override readonly name = 'RedisConfigError';

  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`Invalid Redis configuration: ${field} ${message}`);
  }
}

/** No pooled connection became free within `pool.acquireTimeout`. */
export class RedisPoolTimeoutError extends Error {
  override readonly name = 'RedisPoolTimeoutError';

  constructor(
    readonly client: string,
    readonly waited: number,
    readonly maxSize: number,
  ) {
    super(
      `No dedicated connection of Redis client "${client}" was free within ${waited} ms (pool.maxSize ${maxSize}). ` +
        `Raise pool.maxSize or pool.acquireTimeout, or hold connections for less time.`,
    );
  }
}
