import type { RateLimitOptions } from '@redwing/rate-limit';

/**
 * Failed logins per client address: 5 per minute in a sliding window, then 5 minutes blocked. Successful
 * logins are given back (`reward`), so only failures count. Critical: with Redis down the route answers 503
 * rather than letting an attacker guess passwords against per-instance counters.
 */
export const LOGIN_LIMIT = {
  name: 'login',
  points: 5,
  duration: 60_000,
  algorithm: 'sliding-window',
  blockDuration: 300_000,
  critical: true,
} as const satisfies RateLimitOptions;

/**
 * General API traffic per client address: 60 per minute (fixed window), counted in leased slices.
 *
 * Why `counting: 'leased'`: this is the busy, low-stakes route. Leasing never admits more than 60 a minute
 * across the instances; what it costs is a bounded under-admission (a slice left on an instance the client
 * stopped hitting, given back within about a second) and a `remaining` header that is this instance's view.
 * What it buys: most requests of a busy client skip the Redis round trip, and a client flooding past its
 * limit is refused from memory (the refusal is remembered for up to a second) instead of costing Redis a
 * script call per refused request. The login and per-user limits below stay exact: the login is a sliding
 * window whose successes are given back at once (exactness matters against password guessing), and the
 * per-user burst is a token bucket, which is always exact (its route pays a round trip anyway).
 */
export const API_LIMIT = {
  name: 'api',
  points: 60,
  duration: 60_000,
  counting: 'leased',
} as const satisfies RateLimitOptions;

/** Per authenticated user: bursts of 10 refilled over 10 s, and at most 1,000 per hour. */
export const USER_LIMITS = [
  { name: 'user-burst', key: 'user', points: 10, duration: 10_000, algorithm: 'token-bucket' },
  { name: 'user-hourly', key: 'user', points: 1_000, duration: 3_600_000 },
] as const satisfies RateLimitOptions[];
