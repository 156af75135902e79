import { HttpException, HttpStatus } from '@nestjs/common';

/** The module options, a `@RateLimit()` or a service call's limits are invalid. The message names the field. */
export class RateLimitConfigError extends Error {
  override readonly name = 'RateLimitConfigError';

  constructor(
    /** Dotted path of the offending field, e.g. `policies.login.points` or `@RateLimit(BoardsController.list).duration`. */
    readonly field: string,
    message: string,
  ) {
    super(`Invalid rate limit configuration: ${field} ${message}`);
  }
}

/**
 * A rate-limit Lua script answered with a negative code: it was called with an invalid argument. This is a
 * bug in `@redwing/rate-limit` or in a direct call of the script, never an outage, so it is thrown to the
 * caller instead of falling back to the in-memory limiter.
 */
export class RateLimitScriptError extends Error {
  override readonly name = 'RateLimitScriptError';

  constructor(
    /** The script's name, e.g. `redwingRateLimitSlidingWindow`. */
    readonly script: string,
    /** The negative code it answered. */
    readonly code: number,
    options?: { cause?: unknown },
  ) {
    super(
      `Rate limit script ${script} refused its arguments (code ${code}); this is a bug in ` +
        `@redwing/rate-limit or in a direct call of the script, not a Redis problem. ` +
        `The script's header comment lists what each argument must be.`,
      options,
    );
  }
}

/** Body of the 429 and 503 responses. */
export interface RateLimitResponseBody {
  statusCode: number;
  error: string;
  message: string;
  /** Seconds until a retry can succeed (same as the `Retry-After` header). */
  retryAfter: number;
}

/** 429 Too Many Requests, with `retryAfter` in seconds in the JSON body (the guard also sets `Retry-After`). */
export class RateLimitExceededException extends HttpException {
  constructor(
    readonly retryAfter: number,
    message = `Too many requests; retry in ${retryAfter} s.`,
  ) {
    super(
      {
        statusCode: HttpStatus.TOO_MANY_REQUESTS,
        error: 'Too Many Requests',
        message,
        retryAfter,
      } satisfies RateLimitResponseBody,
      HttpStatus.TOO_MANY_REQUESTS,
    );
  }
}

/**
 * 503 Service Unavailable: Redis cannot be reached and the route's limit is `critical`, so it fails closed
 * instead of being limited in memory.
 */
export class RateLimitUnavailableException extends HttpException {
  constructor(readonly retryAfter: number) {
    super(
      {
        statusCode: HttpStatus.SERVICE_UNAVAILABLE,
        error: 'Service Unavailable',
        message:
          `Rate limiting is temporarily unavailable and this route does not run without it; ` +
          `retry in ${retryAfter} s.`,
        retryAfter,
      } satisfies RateLimitResponseBody,
      HttpStatus.SERVICE_UNAVAILABLE,
    );
  }
}
