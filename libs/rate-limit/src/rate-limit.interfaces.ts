import type { ExecutionContext } from '@nestjs/common';
import type { RATE_LIMIT_ALGORITHMS } from './rate-limit.constants';

/**
 * How a limit counts:
 * - `fixed-window`: rate-limiter-flexible's counter; the window starts at a client's first request and
 *   resets after `duration` (whole seconds only).
 * - `sliding-window`: an exact log of the last `duration` ms (one sorted-set member per point); never admits
 *   more than `points` in any window of `duration` ms. Memory O(points) per client.
 * - `token-bucket`: a bucket of `points` tokens refilled at `points / duration` per ms; allows bursts of
 *   `points`, then a steady rate.
 */
export type RateLimitAlgorithm = (typeof RATE_LIMIT_ALGORITHMS)[number];

/**
 * How a fixed-window limit is counted in Redis:
 * - `exact`: one round trip per request; every instance sees every point at once.
 * - `leased`: an instance takes a slice of the window's points from Redis in one atomic call and admits
 *   requests from it in memory, so a busy route pays a round trip per slice instead of per request.
 *   Admissions never exceed `points` per window across instances; the price is bounded under-admission
 *   (an idle instance's unspent slice, given back within about a second or expiring with the window), and
 *   `remaining` is this instance's view (see the README, "Leased counting").
 * Sliding windows and token buckets are always exact.
 */
export type RateLimitCounting = 'exact' | 'leased';

/**
 * Who is counted:
 * - `'ip'`: the client address, taken `trustProxy` hops from the socket (IPv6 grouped by `ipv6Prefix`);
 * - `'user'`: the authenticated user (`request.user`, see `userId`); the client address when the request has
 *   no user. Authentication must run before the guard (middleware, or a global guard registered first);
 * - a function of the execution context returning any string (an API key, a tenant id). An empty result
 *   falls back to the client address.
 */
export type RateLimitKey =
  | 'ip'
  | 'user'
  | ((
      context: ExecutionContext,
    ) => string | number | null | undefined | Promise<string | number | null | undefined>);

/** One limit, as the service takes it. Unset fields come from the module options. */
export interface RateLimitLimit {
  /**
   * Name of the counter (1–64 of `A-Z a-z 0-9 _ . -`). Limits with the same name, shape and key share one
   * counter, so give two routes the same name to limit them together. Also the policy name in the
   * `RateLimit` headers.
   * @default on a route `<Controller>.<method>`; in a service call `default`
   */
  name?: string;
  /** Requests (points) allowed per `duration`. Integer ≥ 1. @default module `points` (100) */
  points?: number;
  /**
   * Window in ms (the time a token bucket takes to refill from empty). Whole seconds for `fixed-window`.
   * @default module `duration` (60_000)
   */
  duration?: number;
  /** @default module `algorithm` ('fixed-window') */
  algorithm?: RateLimitAlgorithm;
  /**
   * Once a client goes over the limit, refuse it for this many ms (0 = only until points free up).
   * Whole seconds for `fixed-window`.
   * @default 0
   */
  blockDuration?: number;
  /**
   * Fail closed when Redis is unavailable: the request is refused (HTTP 503 with `Retry-After`) instead of
   * being limited by the in-memory insurance limiter. For login, password reset, payment routes.
   * @default false
   */
  critical?: boolean;
  /** Decide and count, never refuse (metrics `result="shadowed"`, debug log). @default module `shadow` */
  shadow?: boolean;
  /**
   * `'leased'`: count in slices taken from Redis (fixed window only), for busy routes where a round trip per
   * request costs more than the route. See {@link RateLimitCounting}.
   * @default module `counting` ('exact') for fixed-window limits; sliding windows and token buckets are exact
   */
  counting?: RateLimitCounting;
}

/** One limit on a route: a {@link RateLimitLimit} plus who is counted and what a request costs. */
export interface RateLimitOptions extends RateLimitLimit {
  /** Who is counted. @default module `key` ('ip') */
  key?: RateLimitKey;
  /** Points one request consumes, or a function of the context. Integer ≥ 1, ≤ points. @default 1 */
  cost?: number | ((context: ExecutionContext) => number);
}

/** Options of `RateLimitModule.forRoot()`. Durations are milliseconds. */
export interface RateLimitModuleOptions {
  /** Default `points` of every limit. @default 100 */
  points?: number;
  /** Default `duration` of every limit, ms. @default 60_000 */
  duration?: number;
  /** Default algorithm. @default 'fixed-window' */
  algorithm?: RateLimitAlgorithm;
  /** Default client key of route limits. @default 'ip' */
  key?: RateLimitKey;
  /** Default `blockDuration`, ms. @default 0 */
  blockDuration?: number;
  /** Default cost of a request. @default 1 */
  cost?: number;
  /** Every limit fails closed when Redis is unavailable. @default false */
  critical?: boolean;
  /** Shadow mode for every limit: decide and report, never refuse. @default false */
  shadow?: boolean;
  /**
   * How fixed-window limits without their own `counting` are counted (sliding windows and token buckets are
   * always exact). `'exact'` by default: leasing trades exact per-request accounting for speed, a choice a
   * route should make knowingly. See {@link RateLimitCounting}.
   * @default 'exact'
   */
  counting?: RateLimitCounting;
  /**
   * Limit every route that has no `@RateLimit()` with the module defaults (opt out with `@SkipRateLimit()`),
   * like `@nestjs/throttler`. `false`: only decorated routes are limited.
   * @default true
   */
  limitAllRoutes?: boolean;
  /**
   * Named limits that routes refer to with `@RateLimit('name')` and service calls with `{ limits: 'name' }`,
   * so limit sizes can come from configuration at start-up.
   * @example { boards: { points: 120, duration: 60_000 } }
   */
  policies?: Record<string, RateLimitOptions | RateLimitOptions[]>;
  /** Name of the `@redwing/redis` client to count in. @default 'default' */
  client?: string;
  /**
   * Gateway instances sharing the limits. While Redis is unavailable each instance enforces
   * `floor(points / instances)` (at least 1) in memory, so the fleet stays near the configured limit.
   * @default 1
   */
  instances?: number;
  /**
   * Number of reverse proxies in front of the app that append to `X-Forwarded-For` (0 = clients connect
   * directly; the socket address is used). The client address is taken that many hops from the socket.
   * "Trust every proxy" (`true`) is refused: it lets any client pick its address.
   * @default 0
   */
  trustProxy?: number;
  /** IPv6 clients are counted per network of this prefix length (1–128). @default 56 */
  ipv6Prefix?: number;
  /** Send the IETF draft `RateLimit-Policy` and `RateLimit` headers. @default true */
  headers?: boolean;
  /** Also send `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` (seconds). @default false */
  legacyHeaders?: boolean;
  /** `Retry-After` of the 503 a critical route answers while Redis is unavailable, ms. @default 5_000 */
  failClosedRetryAfter?: number;
  /** The in-memory insurance limiter's table. @default the client's `fallback` options (10_000 entries, 16 MiB) */
  local?: { maxEntries?: number; maxBytes?: number };
  /**
   * The id a `'user'` key counts, from `request.user`.
   * @default `user.id ?? user.sub ?? user.userId`, or the user itself when it is a string or number
   */
  userId?: (user: unknown) => string | number | null | undefined;
}

/** Which store made a decision. `bypass`: Redis down and fallbacks disabled, so nothing was counted. */
export type RateLimitMode = 'redis' | 'local' | 'bypass';

/** The state of one limit after a call. */
export interface RateLimitState {
  /** Policy name (as in the `RateLimit` headers). */
  name: string;
  algorithm: RateLimitAlgorithm;
  /** Configured points (the whole fleet's limit, also while limiting locally). */
  points: number;
  /** Window, ms. */
  duration: number;
  /** Whether this limit admitted the request (for `get`: whether one more point would be admitted). */
  allowed: boolean;
  /** Points left in the current window. */
  remaining: number;
  /** ms until the quota is fully restored. */
  reset: number;
  /** ms until a refused request could succeed (0 when allowed). */
  retryAfter: number;
  critical: boolean;
  shadow: boolean;
  /** Where it was counted; `unavailable` when Redis was down and the limit is critical. */
  mode: RateLimitMode | 'unavailable';
}

/** The outcome of a service call over one or several limits. */
export interface RateLimitDecision {
  /** Serve the request: every enforced limit admitted it (shadow limits never refuse). */
  allowed: boolean;
  /** Refused because Redis was unavailable and a limit is `critical` (HTTP 503). */
  unavailable: boolean;
  /** A shadow limit would have refused the request. */
  shadowed: boolean;
  /** ms until a refused request could succeed; 0 when allowed. */
  retryAfter: number;
  /** `local` when any limit was counted in memory. */
  mode: RateLimitMode;
  /** Per limit, in the order given. */
  limits: RateLimitState[];
}

/** Options of the service's methods. */
export interface RateLimitCallOptions {
  /**
   * The limits to apply: limit objects, names of `policies`, or both.
   * @default the module defaults (one limit named `default`)
   */
  limits?: string | RateLimitLimit | ReadonlyArray<string | RateLimitLimit>;
}

/** Options of `RateLimitService.consume()`. */
export interface RateLimitConsumeOptions extends RateLimitCallOptions {
  /** Points this call consumes. Integer ≥ 1. @default the module `cost` (1) */
  cost?: number;
}

/** What the service counted since start (also exposed as metrics when the app provides `REDWING_METRICS`). */
export interface RateLimitStats {
  mode: 'redis' | 'local';
  decisions: { allowed: number; denied: number; shadowed: number; unavailable: number };
  switches: { toLocal: number; toRedis: number };
  /** Calls decided in memory by the insurance limiter (Redis unavailable). */
  localDecisions: number;
  /**
   * Leased counting: round trips of the lease script, points granted to this instance in slices, unspent
   * points given back, requests decided from a slice without a round trip, and leases held now.
   */
  leases: { requests: number; granted: number; returned: number; local: number; entries: number };
  local: { entries: number; maxEntries: number; bytes: number; maxBytes: number; evictions: number };
}
