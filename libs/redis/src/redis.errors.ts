import { redactText } from './redact';

/**
 * Why a command was refused without reaching Redis. `request-budget`: an earlier command of the same HTTP
 * request (or `runWithRedisBudget` scope) timed out or lost its connection, so this request does not wait
 * on Redis again (one Redis wait per request; `requestBudget` option of `RedisClientModule`).
 */
export type RedisUnavailableReason =
  'breaker-open' | 'forced-open' | 'disconnected' | 'closed' | 'request-budget';

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

/**
 * The command was written to Redis, then its connection dropped before the reply arrived. Like a timeout,
 * whether it ran on the server is unknown (unlike {@link RedisUnavailableError}, which promises "not
 * sent"); it is never sent again by Redwing. Make the operation idempotent, or check its effect, before
 * retrying.
 */
export class RedisConnectionLostError extends Error {
  override readonly name = 'RedisConnectionLostError';
  /** Redis is not usable right now, so a fallback is allowed; the command's outcome is still unknown. */
  readonly fallbackAllowed = true;
  readonly outcomeUnknown = true;

  constructor(
    readonly client: string,
    readonly command: string,
    options?: { cause?: unknown },
  ) {
    super(
      `The connection of Redis client "${client}" closed while "${command}" awaited its reply; it may or may ` +
        `not have run. Retry only if the operation is idempotent.`,
      options,
    );
  }
}

/**
 * A Lua script registered with `defineScripts()` answered one of its documented negative failure codes.
 * `code` and `meaning` come from the script's `codes` table; libs catch it and throw their own error.
 */
export class RedisScriptError extends Error {
  override readonly name = 'RedisScriptError';

  constructor(
    readonly script: string,
    readonly code: number,
    readonly meaning: string,
  ) {
    super(`Redis script "${script}" failed with code ${code}: ${meaning}`);
  }
}

/** Reply errors that say the server cannot serve now (loading, failing over, busy), not that the call was wrong. */
const UNAVAILABLE_REPLY = /^(LOADING|CLUSTERDOWN|MASTERDOWN|READONLY|TRYAGAIN|BUSY)\b/;
/** Socket-level failures ioredis and node surface without a Redwing type. */
const CONNECTION_FAILURE =
  /Connection is closed|Command aborted due to connection close|Stream isn't writeable|enableOfflineQueue options is false|ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH|Failed to refresh slots cache|None of startup nodes is available|Too many Cluster redirections|Reached the max retries per request limit/;

/**
 * Whether `err` means "Redis could not be used" (so a lib may fall back, fail closed or answer 503) rather
 * than "Redis refused this call" (a bug or bad input to surface). True for Redwing's
 * `RedisUnavailableError`, `RedisCommandTimeoutError` and `RedisConnectionLostError`, reply errors such
 * as `LOADING`/`CLUSTERDOWN`/`READONLY`/`BUSY`, and socket-level failures. `OOM` replies are not outages:
 * check them with {@link describeRedisError} or the message.
 */
export function isRedisUnavailable(err: unknown): boolean {
  if (err === null || typeof err !== 'object') return false;
  const e = err as { fallbackAllowed?: unknown; name?: unknown; message?: unknown };
  if (e.fallbackAllowed === true) return true;
  const message = typeof e.message === 'string' ? e.message : '';
  if (e.name === 'ReplyError') return UNAVAILABLE_REPLY.test(message);
  return (
    CONNECTION_FAILURE.test(message) ||
    e.name === 'MaxRetriesPerRequestError' ||
    e.name === 'ClusterAllFailedError'
  );
}

/**
 * A short, log-safe description of a Redis failure (`RedisUnavailableError: breaker-open`,
 * `ReplyError: OOM command not allowed…`), at most 200 characters. Error messages of Redwing and ioredis
 * carry no credentials; pass `secrets` to scrub anything else a caller built into a message.
 */
export function describeRedisError(err: unknown, secrets: readonly string[] = []): string {
  let text: string;
  if (err instanceof Error) {
    const reason = (err as { reason?: unknown }).reason;
    const detail = typeof reason === 'string' ? reason : err.message;
    text = err.name && err.name !== 'Error' ? `${err.name}: ${detail}` : detail;
  } else {
    text = String(err);
  }
  if (secrets.length > 0) text = redactText(text, secrets);
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}
