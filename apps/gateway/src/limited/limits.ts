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

/** General API traffic per client address: 60 per minute (fixed window). */
export const API_LIMIT = { name: 'api', points: 60, duration: 60_000 } as const satisfies RateLimitOptions;

/** Per authenticated user: bursts of 10 refilled over 10 s, and at most 1,000 per hour. */
export const USER_LIMITS = [
  { name: 'user-burst', key: 'user', points: 10, duration: 10_000, algorithm: 'token-bucket' },
  { name: 'user-hourly', key: 'user', points: 1_000, duration: 3_600_000 },
] as const satisfies RateLimitOptions[];
