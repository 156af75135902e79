/**
 * The lock is held by someone else and did not become free within the wait budget. Nothing was granted.
 * `retryAfter` is the holder's remaining lease (ms) when it was last seen: a good `Retry-After`.
 */
export class LockBusyError extends Error {
  override readonly name = 'LockBusyError';

  constructor(
    readonly resource: string,
    /** How long the caller waited, ms. */
    readonly waited: number,
    /** Remaining lease of the current holder when last seen, ms (at least 1). */
    readonly retryAfter: number,
  ) {
    super(
      `Lock "${truncate(resource)}" is held by another owner (free in about ${retryAfter} ms); gave up after ` +
        `waiting ${waited} ms. Retry later, or pass a longer { wait } to acquire().`,
    );
  }
}

/**
 * Redis could not be used to decide (breaker open, connection down, timeout, no quorum of the lock's
 * masters reachable). The lock was NOT granted: Redwing never falls back to a local lock. Retry later.
 */
export class LockUnavailableError extends Error {
  override readonly name = 'LockUnavailableError';

  constructor(
    readonly resource: string,
    /** The step that failed. */
    readonly operation: 'acquire' | 'extend' | 'release' | 'fence',
    options?: { cause?: unknown },
  ) {
    super(
      `Lock "${truncate(resource)}" could not ${operation === 'fence' ? 'check its fence' : operation}: Redis is ` +
        `unavailable (or fewer than a quorum of the lock's masters answered). Nothing was granted; retry ` +
        `later and check the Redis health.`,
      options,
    );
  }
}

/**
 * The lease was lost while the holder still needed it: it expired, another owner took the resource, or an
 * extension failed. Work done after this point is not protected; writes fenced with the old token are
 * refused by the resource.
 */
export class LockLostError extends Error {
  override readonly name = 'LockLostError';

  constructor(
    readonly resource: string,
    /** The fencing token of the lost lease. */
    readonly fence: number,
    readonly reason: 'expired' | 'taken' | 'extend-failed' | 'released',
    options?: { cause?: unknown },
  ) {
    super(
      `Lock "${truncate(resource)}" (fence ${fence}) was lost (${reason}); stop the protected work. ` +
        `Raise ttl, or use using() which extends the lease automatically.`,
      options,
    );
  }
}

/** `LockModule` options or a `@WithLock()` declaration are invalid; `field` names what to change. */
export class LockConfigError extends Error {
  override readonly name = 'LockConfigError';

  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`Invalid lock configuration: ${field} ${message}`);
  }
}

function truncate(text: string): string {
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}
