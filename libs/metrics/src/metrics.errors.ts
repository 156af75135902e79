/**
 * The metrics configuration (options or `OTEL_*` / `SENTRY_*` / `METRICS_*` variables) is invalid.
 * `field` is the option path or the variable name; the message says what to do and never echoes a value
 * (a DSN or an endpoint may carry credentials).
 */
export class MetricsConfigError extends Error {
  override readonly name = 'MetricsConfigError';

  constructor(
    readonly field: string,
    problem: string,
  ) {
    super(`Invalid metrics configuration: ${field} ${problem}`);
  }
}

/**
 * The cluster-wide series could not be read because their Redis client is unavailable (down, or its
 * breaker open). Writes never fail like this: they are buffered and skipped instead.
 */
export class SeriesUnavailableError extends Error {
  override readonly name = 'SeriesUnavailableError';

  constructor(
    readonly client: string,
    options?: { cause?: unknown },
  ) {
    super(
      `The metrics series cannot be read: Redis client "${client}" is unavailable. ` +
        `Retry when it is back (GET /health/ready shows its state).`,
      options,
    );
  }
}
