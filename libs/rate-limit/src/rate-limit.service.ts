import { Inject, Injectable, Logger, Optional, type OnModuleDestroy } from '@nestjs/common';
import {
  describeRedisError,
  isRedisUnavailable,
  RedisClientManager,
  REDWING_METRICS,
  type FallbackStore,
  type ManagedRedisClient,
  type MetricsRegistry,
} from '@redwing/redis';
import { RateLimiterRes } from 'rate-limiter-flexible';
import type { ClientIpSource } from './client-ip';
import { DEFAULT_LEASE_TUNING, LeaseCounter } from './lease-counter';
import { LimitResolver, type LimitCall, type ResolvedLimit } from './limit-resolver';
import { LocalLimiter, type LimitOp, type LocalEntry, type RawLimitState } from './local-limiter';
import type { ResolvedRateLimitConfig } from './rate-limit.config';
import { RATE_LIMIT_CONFIG, RATE_LIMIT_LIB } from './rate-limit.constants';
import { RateLimitConfigError, RateLimitScriptError } from './rate-limit.errors';
import type {
  RateLimitCallOptions,
  RateLimitConsumeOptions,
  RateLimitDecision,
  RateLimitMode,
  RateLimitState,
  RateLimitStats,
} from './rate-limit.interfaces';
import { RateLimitMetrics, type DecisionResult } from './rate-limit.metrics';
import { RedisLimitStore } from './redis-limit-store';

/**
 * Rate limiting on the shared Redis client, with an in-memory insurance limiter while Redis is unavailable.
 *
 * Every method takes the client key (`ip:1.2.3.4`, `user:42`, `socket:abc` — any string) and optionally the
 * limits to apply (limit objects or names of the module's `policies`; by default the module defaults). None
 * throws when a limit refuses: the returned {@link RateLimitDecision} says what happened.
 *
 * Redis down: each limit is enforced in memory at `points / instances` per instance; `critical` limits refuse
 * (`unavailable: true`) instead. The switch is logged, counted, and undone by itself at the first call
 * Redis answers again.
 * @example
 * const decision = await rateLimit.consume(`socket:${socket.id}`, { limits: { points: 20, duration: 1_000 } });
 * if (!decision.allowed) socket.emit('rate-limited', { retryAfter: decision.retryAfter });
 */
@Injectable()
export class RateLimitService implements OnModuleDestroy {
  private readonly logger = new Logger('RateLimit');
  private readonly client: ManagedRedisClient;
  private readonly store: RedisLimitStore;
  private readonly localTable: FallbackStore<LocalEntry>;
  private readonly local: LocalLimiter;
  private readonly metrics: RateLimitMetrics;
  /** Slices of leased fixed-window limits (`counting: 'leased'`). */
  private readonly leases: LeaseCounter;
  /** Gives back idle slices every `maxAgeMs`. */
  private sweep: NodeJS.Timeout | undefined;

  /** The decision of a single-limit consume; made once, not per call. */
  private readonly consumedOne = (state: RateLimitState): RateLimitDecision =>
    this.aggregate([state], 'consume');
  private mode: 'redis' | 'local' = 'redis';
  /** Bumped on every switch; an outcome only switches the mode if its call started in the current one. */
  private generation = 0;
  /** Why Redis is not used: the outage, or the last error Redis answered that was not one. */
  private reason = '';
  private localSince = 0;
  private readonly counts = {
    decisions: { allowed: 0, denied: 0, shadowed: 0, unavailable: 0 },
    switches: { toLocal: 0, toRedis: 0 },
    localDecisions: 0,
  };

  /**
   * @throws RateLimitConfigError when the module's `client` is not a configured `@redwing/redis` client
   */
  constructor(
    @Inject(RATE_LIMIT_CONFIG) private readonly config: ResolvedRateLimitConfig,
    private readonly resolver: LimitResolver,
    manager: RedisClientManager,
    @Optional() @Inject(REDWING_METRICS) metrics?: MetricsRegistry,
  ) {
    if (!manager.has(config.client)) {
      throw new RateLimitConfigError(
        'client',
        `names the Redis client "${config.client}", which is not configured; configured: ` +
          `${manager
            .all()
            .map((c) => c.name)
            .join(', ')}. Add it to RedisClientModule.forRoot({ clients }) or fix the name.`,
      );
    }
    this.client = manager.get(config.client);
    this.store = new RedisLimitStore(this.client.connection);
    this.localTable = this.client.createFallbackStore<LocalEntry>({
      ...(config.local.maxEntries !== undefined ? { maxEntries: config.local.maxEntries } : {}),
      ...(config.local.maxBytes !== undefined ? { maxBytes: config.local.maxBytes } : {}),
    });
    this.local = new LocalLimiter(this.localTable);
    this.leases = new LeaseCounter(this.store, {
      ...DEFAULT_LEASE_TUNING,
      // With n instances a slice is at most 1 / 2n of what is left, so no instance takes the rest at once.
      share: 2 * config.instances,
      maxEntries: config.local.maxEntries ?? 10_000,
    });
    // Started here, outside any request: a timer started by a request would run in its async context (and
    // its Redis request budget, spent for good if that request's command timed out).
    this.sweep = setInterval(() => {
      if (this.leases.size > 0 && this.client.isAvailable()) void this.leases.giveBackIdle();
    }, DEFAULT_LEASE_TUNING.maxAgeMs).unref();
    this.metrics = new RateLimitMetrics(metrics, {
      local: () => this.mode === 'local',
      entries: () => this.localTable.size,
    });
  }

  /**
   * Count `cost` points for `key` against each limit; refused when any enforced limit is exhausted.
   * @throws RateLimitConfigError when `options.limits` is invalid or names an unknown policy
   */
  consume(key: string, options: RateLimitConsumeOptions = {}): Promise<RateLimitDecision> {
    const limits = this.resolver.limits(options.limits);
    const subject = this.resolver.subject(key);
    if (limits.length === 1) {
      const limit = limits[0];
      const call = { limit, subject, cost: this.resolver.cost(limit, options.cost) };
      return this.applyOne(call, 'consume', this.consumedOne);
    }
    return this.decide(
      limits.map((limit) => ({ limit, subject, cost: this.resolver.cost(limit, options.cost) })),
    );
  }

  /** The current state for `key` without counting; `allowed` says whether one more point would be admitted. */
  get(key: string, options: RateLimitCallOptions = {}): Promise<RateLimitDecision> {
    return this.run(key, options, 'peek', 1);
  }

  /** Give `points` back to `key` (e.g. a successful login after failed attempts). */
  reward(key: string, points = 1, options: RateLimitCallOptions = {}): Promise<RateLimitDecision> {
    return this.run(key, options, 'reward', this.resolver.positive('points', points));
  }

  /** Count `points` more for `key` without checking the limit (e.g. a failed login costs extra). */
  penalty(key: string, points = 1, options: RateLimitCallOptions = {}): Promise<RateLimitDecision> {
    return this.run(key, options, 'penalty', this.resolver.positive('points', points));
  }

  /**
   * Refuse `key` for `duration` ms on each limit (fixed-window limits round up to whole seconds).
   * Redis down: blocks in memory on this instance.
   */
  async block(key: string, duration: number, options: RateLimitCallOptions = {}): Promise<void> {
    this.resolver.positive('duration', duration);
    const subject = this.resolver.subject(key);
    await Promise.all(
      this.resolver.limits(options.limits).map(async (limit) => {
        const storeKey = this.resolver.storeKey(limit, subject);
        this.leases.drop(storeKey);
        const gen = this.generation;
        try {
          await this.store.block(limit, storeKey, duration);
          this.noteAnswered(gen);
        } catch (err) {
          this.noteFailed(err, gen);
          this.local.block(storeKey, duration);
        }
      }),
    );
  }

  /** Forget everything counted for `key` on each limit (and lift blocks). Resolves to whether anything was stored. */
  async delete(key: string, options: RateLimitCallOptions = {}): Promise<boolean> {
    const subject = this.resolver.subject(key);
    const deleted = await Promise.all(
      this.resolver.limits(options.limits).map(async (limit) => {
        const storeKey = this.resolver.storeKey(limit, subject);
        this.leases.drop(storeKey);
        const localDeleted = this.local.delete(storeKey);
        const gen = this.generation;
        try {
          const found = await this.store.delete(limit, storeKey);
          this.noteAnswered(gen);
          return found || localDeleted;
        } catch (err) {
          this.noteFailed(err, gen);
          return localDeleted;
        }
      }),
    );
    return deleted.some(Boolean);
  }

  /**
   * The client-address key (`ip:…`) of a request or WebSocket handshake, following `trustProxy` and
   * `ipv6Prefix`. Accepts a Node/Express request, a Fastify request, or `{ headers, remoteAddress }`.
   */
  identify(request: ClientIpSource | object): string {
    return this.resolver.identify(request);
  }

  /** Whether limits are counted in Redis or, while it is unavailable, in memory. */
  getMode(): 'redis' | 'local' {
    return this.mode;
  }

  /** Counters since start, and the in-memory table's size. */
  stats(): RateLimitStats {
    const s = this.localTable.stats();
    return {
      mode: this.mode,
      decisions: { ...this.counts.decisions },
      switches: { ...this.counts.switches },
      localDecisions: this.counts.localDecisions,
      leases: this.leases.stats(),
      local: {
        entries: s.entries,
        maxEntries: s.maxEntries,
        bytes: s.bytes,
        maxBytes: s.maxBytes,
        evictions: s.evictions,
      },
    };
  }

  /**
   * @internal Consume on resolved limits (what `RateLimitGuard` resolved for a request) and aggregate the
   * outcome into one decision.
   */
  decide(calls: LimitCall[]): Promise<RateLimitDecision> {
    // One promise hop less than the general path: this is every single-limit call.
    if (calls.length === 1) return this.applyOne(calls[0], 'consume', this.consumedOne);
    return Promise.all(calls.map((c) => this.applyOne(c, 'consume', identity))).then((states) =>
      this.aggregate(states, 'consume'),
    );
  }

  /**
   * @internal The decision of one leased limit when this instance's slice decides it without Redis, or
   * undefined (the guard then calls `decide`). Saves the guard its promise on most requests of a busy route.
   */
  decideNow(calls: LimitCall[]): RateLimitDecision | undefined {
    if (calls.length !== 1 || this.mode !== 'redis') return undefined;
    const { limit, subject, cost } = calls[0];
    if (!limit.leased || !this.client.isAvailable()) return undefined;
    const raw = this.leases.take(this.resolver.storeKey(limit, subject), cost);
    return raw && this.consumedOne(this.state(limit, raw, 'redis'));
  }

  /** Gives unspent slices back to Redis (best effort) and stops the give-back timer. */
  async onModuleDestroy(): Promise<void> {
    if (this.sweep) clearInterval(this.sweep);
    this.sweep = undefined;
    if (this.leases.size > 0 && this.client.isAvailable()) await this.leases.giveBackIdle(true);
  }

  // ---------------------------------------------------------------------------------------------

  private run(
    key: string,
    options: RateLimitCallOptions,
    op: Exclude<LimitOp, 'consume'>,
    cost: number,
  ): Promise<RateLimitDecision> {
    const subject = this.resolver.subject(key);
    const calls = this.resolver.limits(options.limits).map((limit) => ({ limit, subject, cost }));
    return Promise.all(calls.map((c) => this.applyOne(c, op, identity))).then((states) =>
      this.aggregate(states, op),
    );
  }

  /** Apply `op` to one limit in Redis, or in memory when Redis cannot be used; `then` maps the state. */
  private applyOne<T>(call: LimitCall, op: LimitOp, then: (state: RateLimitState) => T): Promise<T> {
    const { limit, cost } = call;
    const key = this.resolver.storeKey(limit, call.subject);
    if (!this.client.isAvailable()) {
      this.noteFailed(undefined, this.generation);
      try {
        return Promise.resolve(then(this.fallback(limit, key, op, cost)));
      } catch (err) {
        return Promise.reject(err as Error);
      }
    }
    const gen = this.generation;
    if (limit.leased) {
      if (op === 'consume') return this.leased(limit, key, cost, gen, then);
      // A reward or penalty here changes what a refusal this instance remembers was based on.
      this.leases.recheck(key);
    }
    if (op === 'consume' && limit.algorithm === 'fixed-window') {
      // The hot path: rate-limiter-flexible's own promise, mapped once (it rejects with its result on refusal).
      return this.store.consumeFixed(limit, key, cost).then(
        (res) => {
          if (this.mode !== 'redis') this.noteAnswered(gen);
          return then(this.state(limit, fixedState(res, true), 'redis'));
        },
        (err: unknown) => {
          if (err instanceof RateLimiterRes) {
            if (this.mode !== 'redis') this.noteAnswered(gen);
            return then(this.state(limit, fixedState(err, false), 'redis'));
          }
          this.noteFailed(err, gen);
          return then(this.fallback(limit, key, op, cost));
        },
      );
    }
    return this.store.apply(limit, key, op, cost).then(
      (raw) => {
        if (this.mode !== 'redis') this.noteAnswered(gen);
        return then(this.state(limit, raw, 'redis'));
      },
      (err: unknown) => {
        if (err instanceof RateLimitScriptError) throw err;
        this.noteFailed(err, gen);
        return then(this.fallback(limit, key, op, cost));
      },
    );
  }

  /** A consume of a leased limit: from this instance's slice, or one lease round trip. */
  private leased<T>(
    limit: ResolvedLimit,
    key: string,
    cost: number,
    gen: number,
    then: (state: RateLimitState) => T,
  ): Promise<T> {
    let out: RawLimitState | Promise<RawLimitState>;
    try {
      out = this.leases.consume(limit, key, cost);
      if (!(out instanceof Promise)) return Promise.resolve(then(this.state(limit, out, 'redis')));
    } catch (err) {
      return Promise.reject(err as Error);
    }
    return out.then(
      (raw) => {
        if (this.mode !== 'redis') this.noteAnswered(gen);
        return then(this.state(limit, raw, 'redis'));
      },
      (err: unknown) => {
        if (err instanceof RateLimitScriptError) throw err;
        this.noteFailed(err, gen);
        return then(this.fallback(limit, key, 'consume', cost));
      },
    );
  }

  private fallback(limit: ResolvedLimit, key: string, op: LimitOp, cost: number): RateLimitState {
    if (limit.spec.critical && (op === 'consume' || op === 'peek')) {
      const wait = this.config.failClosedRetryAfter;
      return this.state(
        limit,
        { allowed: false, remaining: 0, retryAfter: wait, reset: wait },
        'unavailable',
      );
    }
    if (!this.client.fallbackEnabled) {
      return this.state(
        limit,
        { allowed: true, remaining: limit.spec.points, retryAfter: 0, reset: 0 },
        'bypass',
      );
    }
    this.counts.localDecisions++;
    this.client.reportFallback(RATE_LIMIT_LIB, op, this.reason);
    return this.state(
      limit,
      this.local.apply(key, limit.local, { op, cost: Math.min(cost, Number.MAX_SAFE_INTEGER) }),
      'local',
    );
  }

  private state(limit: ResolvedLimit, raw: RawLimitState, mode: RateLimitState['mode']): RateLimitState {
    const spec = limit.spec;
    return {
      name: limit.label,
      algorithm: spec.algorithm,
      points: spec.points,
      duration: spec.duration,
      allowed: raw.allowed,
      remaining: raw.remaining,
      reset: Math.max(0, raw.reset),
      retryAfter: raw.allowed ? 0 : Math.max(1, raw.retryAfter),
      critical: spec.critical,
      shadow: spec.shadow,
      mode,
    };
  }

  private aggregate(states: RateLimitState[], op: LimitOp): RateLimitDecision {
    let allowed = true;
    let unavailable = false;
    let shadowed = false;
    let retryAfter = 0;
    let mode: RateLimitMode = 'redis';
    for (const s of states) {
      if (s.mode === 'local') mode = 'local';
      else if (s.mode === 'bypass' && mode === 'redis') mode = 'bypass';
      if (s.allowed) continue;
      if (s.shadow) {
        shadowed = true;
        continue;
      }
      allowed = false;
      if (s.mode === 'unavailable') unavailable = true;
      if (s.retryAfter > retryAfter) retryAfter = s.retryAfter;
    }
    const decision: RateLimitDecision = { allowed, unavailable, shadowed, retryAfter, mode, limits: states };
    if (op === 'consume') this.count(decision);
    return decision;
  }

  private count(decision: RateLimitDecision): void {
    const result: DecisionResult = decision.unavailable
      ? 'unavailable'
      : !decision.allowed
        ? 'denied'
        : decision.shadowed
          ? 'shadowed'
          : 'allowed';
    this.counts.decisions[result]++;
    this.metrics.decision(result, decision.mode);
    if (decision.shadowed) {
      this.logger.debug(
        `shadow mode: ${decision.limits
          .filter((s) => s.shadow && !s.allowed)
          .map((s) => `"${s.name}"`)
          .join(', ')} would refuse this request`,
      );
    }
  }

  /** A call that reached Redis answered: leave local mode if it started after the last switch. */
  private noteAnswered(gen: number): void {
    if (this.mode !== 'local' || gen !== this.generation) return;
    this.mode = 'redis';
    this.generation++;
    this.counts.switches.toRedis++;
    this.metrics.switched('redis');
    const local = this.counts.localDecisions;
    this.localTable.clear();
    this.logger.log(
      `Redis client "${this.client.name}" answers again; rate limits are counted in Redis again ` +
        `(in memory for ${Date.now() - this.localSince} ms; ${local} local decisions since start)`,
    );
  }

  /**
   * Redis could not be used for a call (`err` undefined: the client refused to send it). The call is decided
   * in memory either way; an outage also switches to the insurance limiter (once per outage), while an error
   * Redis answered (out of memory, ACL, …) is logged when it changes and leaves the mode alone.
   */
  private noteFailed(err: unknown, gen: number): void {
    if (err !== undefined && !isRedisUnavailable(err)) {
      const reason = describeRedisError(err);
      if (reason === this.reason) return;
      this.reason = reason;
      this.logger.warn(
        `Redis client "${this.client.name}" refused a rate-limit call (${reason}); it was decided in memory ` +
          `on this instance. Fix the Redis side; this is logged again only when the error changes.`,
      );
      return;
    }
    if (this.mode !== 'redis' || gen !== this.generation) return;
    this.mode = 'local';
    this.generation++;
    this.localSince = Date.now();
    // Slices are not spent while the insurance limiter decides; their points expire with their windows.
    this.leases.clear();
    this.counts.switches.toLocal++;
    this.metrics.switched('local');
    this.reason =
      err === undefined
        ? `connection ${this.client.getConnectionState()}, circuit breaker ${this.client.getBreakerState()}`
        : describeRedisError(err);
    const enabled = this.client.fallbackEnabled;
    this.logger.warn(
      `Redis client "${this.client.name}" is unavailable (${this.reason}); ` +
        (enabled
          ? `rate limits are enforced in memory at points / ${this.config.instances} instance(s) per instance`
          : `fallbacks are disabled (REDIS_FALLBACK_ENABLED=false), so non-critical limits are not enforced`) +
        `; critical limits refuse with 503. Back to Redis by itself when it answers.`,
    );
  }
}

const identity = <T>(value: T): T => value;

/** A fixed-window consume result of rate-limiter-flexible as a raw state. */
function fixedState(res: RateLimiterRes, allowed: boolean): RawLimitState {
  return {
    allowed,
    remaining: res.remainingPoints,
    retryAfter: allowed ? 0 : res.msBeforeNext,
    reset: res.msBeforeNext,
  };
}
