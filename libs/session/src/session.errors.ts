import { HttpStatus, ServiceUnavailableException } from '@nestjs/common';

/** The module options (or `SESSION_*` environment) are invalid. The message names the field and the fix. */
export class SessionConfigError extends Error {
  override readonly name = 'SessionConfigError';

  constructor(
    /** Dotted path of the offending option, e.g. `keys[1]` or `cookie.sameSite`. */
    readonly field: string,
    message: string,
  ) {
    super(`Invalid session configuration: ${field} ${message}`);
  }
}

/** Body of the 503 answered while the session store is unavailable. */
export interface SessionUnavailableBody {
  statusCode: 503;
  error: 'Service Unavailable';
  message: string;
  /** Seconds until a retry can succeed (same as the `Retry-After` header). */
  retryAfter: number;
}

/**
 * Redis could not be used to read or write a session (breaker open, connection down, timeout). Nothing is
 * ever created or served from process memory instead: an outage must not look like a logout, and must never
 * log anyone in. It is an HTTP 503; `SessionExceptionFilter` (registered by `SessionModule`) adds
 * `Retry-After`. Retry after `retryAfter` ms.
 */
export class SessionUnavailableError extends ServiceUnavailableException {
  override readonly name = 'SessionUnavailableError';

  constructor(
    /** What was attempted: `load`, `create`, `update`, `destroy`, `touch`, `list`, `destroyAll`. */
    readonly operation: string,
    /** ms after which a retry may succeed. */
    readonly retryAfter: number,
    options?: { cause?: unknown },
  ) {
    const seconds = Math.max(1, Math.ceil(retryAfter / 1_000));
    super(
      {
        statusCode: HttpStatus.SERVICE_UNAVAILABLE,
        error: 'Service Unavailable',
        message: `The session store is temporarily unavailable; retry in ${seconds} s.`,
        retryAfter: seconds,
      } satisfies SessionUnavailableBody,
      { cause: options?.cause },
    );
  }
}

/** `update`/`touch` on a session that no longer exists (logged out, expired). Ask the user to log in again. */
export class SessionNotFoundError extends Error {
  override readonly name = 'SessionNotFoundError';

  constructor(
    /** The session's non-secret reference (never its id). */
    readonly ref: string,
    readonly operation: string,
  ) {
    super(`Session ${ref} no longer exists (${operation}); it was logged out or expired. Log in again.`);
  }
}

/** A session value is larger than `maxValueSize` once serialized. Store less in the session (an id, not a document). */
export class SessionValueTooLargeError extends Error {
  override readonly name = 'SessionValueTooLargeError';

  constructor(
    readonly field: string,
    readonly size: number,
    readonly maxValueSize: number,
  ) {
    super(
      `Session field "${field.slice(0, 64)}" is ${size} bytes serialized, over maxValueSize ${maxValueSize}; ` +
        `store a reference instead, or raise maxValueSize.`,
    );
  }
}
