/** Library segment of every key this module writes: `<prefix>:cache:…`. */
export const CACHE_LIB = 'cache';

/** Name of the profile used when a call names none. */
export const DEFAULT_PROFILE = 'default';

/**
 * Families of keys under `<prefix>:cache:` that are not entries. Profile names cannot contain `~`, so these
 * never collide with `<prefix>:cache:<profile>:<key>` and a profile-wide SCAN never matches them.
 */
export const KEY_FAMILY = {
  tag: '~tag',
  lease: '~lease',
  epoch: '~epoch',
  channel: '~inv',
} as const;

/** Defaults of `CacheModuleOptions`, in one place so docs and code agree. */
export const CACHE_DEFAULTS = {
  client: 'default',
  ttl: 60_000,
  staleWhileRevalidate: 0,
  staleIfError: 0,
  earlyRefreshBeta: 1,
  l1: { maxEntries: 10_000, maxBytes: 32 * 1024 * 1024 },
  lock: { ttl: 5_000, wait: 5_000 },
  compression: { threshold: 16_384, level: 1 },
  maxValueSize: 1024 * 1024,
  maxDeferredInvalidations: 10_000,
  httpMethods: ['GET'],
  /** Request headers that make a request credentialed (RFC 9111 §3.5); see `http.credentialHeaders`. */
  credentialHeaders: ['authorization', 'cookie'],
} as const;

/** Upper bound of any duration option (ms): one year. */
export const MAX_DURATION = 365 * 24 * 3_600_000;
