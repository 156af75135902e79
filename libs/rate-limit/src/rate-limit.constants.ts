/** Lib segment of every key (`<prefix>:ratelimit:…`), of metric names and of fallback reports. */
export const RATE_LIMIT_LIB = 'ratelimit';

/** Injection token of the resolved module options (`ResolvedRateLimitConfig`); internal to this lib. */
export const RATE_LIMIT_CONFIG = Symbol('redwing.ratelimit.config');

/** The algorithms a limit can use. */
export const RATE_LIMIT_ALGORITHMS = ['fixed-window', 'sliding-window', 'token-bucket'] as const;

/** How fixed-window limits can be counted. */
export const RATE_LIMIT_COUNTINGS = ['exact', 'leased'] as const;

/** Short algorithm tags used inside Redis keys. */
export const ALGORITHM_TAG = {
  'fixed-window': 'fw',
  'sliding-window': 'sw',
  'token-bucket': 'tb',
} as const;

/** Defaults of the module options; every one is documented on `RateLimitModuleOptions`. */
export const RATE_LIMIT_DEFAULTS = {
  points: 100,
  duration: 60_000,
  algorithm: 'fixed-window',
  blockDuration: 0,
  cost: 1,
  critical: false,
  shadow: false,
  counting: 'exact',
  client: 'default',
  instances: 1,
  trustProxy: 0,
  ipv6Prefix: 56,
  headers: true,
  legacyHeaders: false,
  limitAllRoutes: true,
  failClosedRetryAfter: 5_000,
} as const;

/** Longest subject (client key) kept verbatim in a Redis key; longer ones are hashed. */
export const MAX_SUBJECT_LENGTH = 200;

/** Upper bounds that catch unit mistakes (seconds vs. milliseconds, a stray zero). */
export const LIMITS = {
  maxPoints: 1_000_000_000,
  /** One year in ms. */
  maxDuration: 366 * 24 * 3_600_000,
  maxInstances: 10_000,
  maxTrustProxy: 32,
} as const;
