import { createHash } from 'node:crypto';
import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { RedisClientManager, type ManagedRedisClient } from '@redwing/redis';
import { RateLimiterRes } from 'rate-limiter-flexible';
import { clientIpKey, type ClientIpSource } from './client-ip';
import { LocalLimiter, type LimitOp, type LocalEntry, type RawLimitState } from './local-limiter';
import {
  checkLimitShape,
  resolveRateLimitConfig,
  specOf,
  validateLimit,
  type LimitSpec,
  type ResolvedRateLimitConfig,
} from './rate-limit.config';
import { ALGORITHM_TAG, MAX_SUBJECT_LENGTH, RATE_LIMIT_LIB } from './rate-limit.constants';
import { RATE_LIMIT_METADATA, SKIP_RATE_LIMIT_METADATA } from './rate-limit.decorator';
import { RateLimitConfigError } from './rate-limit.errors';
import type {
  RateLimitCallOptions,
  RateLimitConsumeOptions,
  RateLimitDecision,
  RateLimitKey,
  RateLimitLimit,
  RateLimitMode,
  RateLimitModuleOptions,
  RateLimitOptions,
  RateLimitState,
  RateLimitStats,
} from './rate-limit.interfaces';
import {
  METRICS_SERVICE,
  RateLimitMetrics,
  type DecisionResult,
  type MetricsRegistry,
} from './rate-limit.metrics';
import { RATE_LIMIT_MODULE_OPTIONS } from './rate-limit.module-definition';
import { RateLimitScriptError, RedisLimitStore, type StoreLimit } from './redis-limit-store';
import type { FallbackStore } from '@redwing/redis';

/** @internal A limit ready to count: validated spec, key base, local shape, cached limiter. */
export interface ResolvedLimit extends StoreLimit {
  spec: LimitSpec;
  /** Policy name in the `RateLimit` headers. */
  label: string;
  /** Points this instance grants on its own while Redis is unavailable. */
  localPoints: number;
  local: { algorithm: LimitSpec['algorithm']; points: number; duration: number; blockDuration: number };
}

/** @internal One limit of a route with what the guard resolves per request. */
export interface RouteLimit {
  limit: ResolvedLimit;
  key: RateLimitKey;
  cost: number | ((context: never) => number);
}

/** @internal The limits of one route, resolved once. */
export interface RouteLimits {
  entries: RouteLimit[];
  /** Some limit's key is a function (possibly async); the others resolve synchronously. */
  keyFunctions: boolean;
  /** Pre-built `RateLimit-Policy` value (enforced limits only), or '' when every limit is in shadow mode. */
  policyHeader: string;
}

/** @internal One limit to apply to one subject. */
export interface LimitCall {
  limit: ResolvedLimit;
  subject: string;
  cost: number;
}

const MAX_LIMIT_CACHE = 10_000;

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
export class RateLimitService {
  /** The module options after defaults and validation. */
  readonly config: ResolvedRateLimitConfig;
  private readonly logger = new Logger('RateLimit');
  private readonly client: ManagedRedisClient;
  private readonly store: RedisLimitStore;
  private readonly localTable: FallbackStore<LocalEntry>;
  private readonly local: LocalLimiter;
  private readonly metrics: RateLimitMetrics;
  private readonly prefix: string;
  private readonly byObject = new WeakMap<object, ResolvedLimit>();
  private readonly byId = new Map<string, ResolvedLimit>();
  private readonly policyLimits = new Map<string, ResolvedLimit[]>();
  private readonly defaultLimits: ResolvedLimit[];
  private readonly routes = new WeakMap<object, WeakMap<object, RouteLimits | null>>();

  /** The decision of a single-limit consume; made once, not per call. */
  private readonly consumedOne = (state: RateLimitState): RateLimitDecision =>
    this.aggregate([state], 'consume');
  private mode: 'redis' | 'local' = 'redis';
  /** Bumped on every switch; an outcome only switches the mode if its call started in the current one. */
  private generation = 0;
  private reason = '';
  private localSince = 0;
  private readonly counts = {
    decisions: { allowed: 0, denied: 0, shadowed: 0, unavailable: 0 },
    switches: { toLocal: 0, toRedis: 0 },
    localDecisions: 0,
  };

  constructor(
    @Inject(RATE_LIMIT_MODULE_OPTIONS) options: RateLimitModuleOptions,
    manager: RedisClientManager,
    @Optional() private readonly reflector?: Reflector,
    @Optional() @Inject(METRICS_SERVICE) metrics?: MetricsRegistry,
  ) {
    this.config = resolveRateLimitConfig(options ?? {});
    if (!manager.has(this.config.client)) {
      throw new RateLimitConfigError(
        'client',
        `names the Redis client "${this.config.client}", which is not configured; configured: ` +
          `${manager
            .all()
            .map((c) => c.name)
            .join(', ')}. Add it to RedisClientModule.forRoot({ clients }) or fix the name.`,
      );
    }
    this.client = manager.get(this.config.client);
    this.prefix = manager.key(RATE_LIMIT_LIB);
    this.store = new RedisLimitStore(this.client.command);
    this.localTable = this.client.createFallbackStore<LocalEntry>({
      ...(this.config.local.maxEntries !== undefined ? { maxEntries: this.config.local.maxEntries } : {}),
      ...(this.config.local.maxBytes !== undefined ? { maxBytes: this.config.local.maxBytes } : {}),
    });
    this.local = new LocalLimiter(this.localTable);
    this.metrics = new RateLimitMetrics(metrics, {
      local: () => this.mode === 'local',
      entries: () => this.localTable.size,
    });
    this.defaultLimits = [this.resolve({ name: 'default' }, 'default', 'limits')];
    for (const [name, list] of this.config.policies) {
      this.policyLimits.set(
        name,
        list.map((limit, i) =>
          this.resolve(
            limit,
            name,
            `policies.${name}${list.length > 1 ? `[${i}]` : ''}`,
            list.length > 1 ? i : -1,
            name,
          ),
        ),
      );
    }
  }

  /**
   * Count `cost` points for `key` against each limit; refused when any enforced limit is exhausted.
   * @throws RateLimitConfigError when `options.limits` is invalid or names an unknown policy
   */
  consume(key: string, options: RateLimitConsumeOptions = {}): Promise<RateLimitDecision> {
    const limits = this.limitsOf(options.limits);
    const subject = this.subject(key);
    if (limits.length === 1) {
      const limit = limits[0];
      return this.applyOne(limit, subject, 'consume', this.costOf(limit, options.cost), this.consumedOne);
    }
    return this.decide(
      limits.map((limit) => ({ limit, subject, cost: this.costOf(limit, options.cost) })),
      'consume',
    );
  }

  /** The current state for `key` without counting; `allowed` says whether one more point would be admitted. */
  get(key: string, options: RateLimitCallOptions = {}): Promise<RateLimitDecision> {
    return this.run(key, options, 'peek', 1);
  }

  /** Give `points` back to `key` (e.g. a successful login after failed attempts). */
  reward(key: string, points = 1, options: RateLimitCallOptions = {}): Promise<RateLimitDecision> {
    return this.run(key, options, 'reward', this.positive('points', points));
  }

  /** Count `points` more for `key` without checking the limit (e.g. a failed login costs extra). */
  penalty(key: string, points = 1, options: RateLimitCallOptions = {}): Promise<RateLimitDecision> {
    return this.run(key, options, 'penalty', this.positive('points', points));
  }

  /**
   * Refuse `key` for `duration` ms on each limit (fixed-window limits round up to whole seconds).
   * Redis down: blocks in memory on this instance.
   */
  async block(key: string, duration: number, options: RateLimitCallOptions = {}): Promise<void> {
    this.positive('duration', duration);
    const subject = this.subject(key);
    await Promise.all(
      this.limitsOf(options.limits).map(async (limit) => {
        const storeKey = this.keyOf(limit, subject);
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
    const subject = this.subject(key);
    const deleted = await Promise.all(
      this.limitsOf(options.limits).map(async (limit) => {
        const storeKey = this.keyOf(limit, subject);
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
    const req = ((request as { raw?: object }).raw ?? request) as {
      headers?: ClientIpSource['headers'];
      socket?: { remoteAddress?: string };
      remoteAddress?: string;
    };
    return clientIpKey(
      { headers: req.headers, remoteAddress: req.remoteAddress ?? req.socket?.remoteAddress },
      this.config,
    );
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
   * @internal The limits of a route (method metadata over class metadata, `@SkipRateLimit`, module defaults),
   * resolved and validated once per handler.
   * @throws RateLimitConfigError naming `@RateLimit(Controller.method)`
   */
  routeLimits(handler: object, cls: object): RouteLimits | null {
    let perClass = this.routes.get(handler);
    if (!perClass) {
      perClass = new WeakMap();
      this.routes.set(handler, perClass);
    }
    let route = perClass.get(cls);
    if (route === undefined) {
      route = this.buildRoute(handler, cls);
      perClass.set(cls, route);
    }
    return route;
  }

  /** @internal Apply one operation to several (limit, subject) pairs and aggregate the outcome. */
  decide(calls: LimitCall[], op: LimitOp): Promise<RateLimitDecision> {
    if (calls.length === 1) {
      // One promise hop less than the general path: this is every single-limit call.
      const c = calls[0];
      return this.applyOne(
        c.limit,
        c.subject,
        op,
        c.cost,
        op === 'consume' ? this.consumedOne : (state) => this.aggregate([state], op),
      );
    }
    return Promise.all(calls.map((c) => this.applyOne(c.limit, c.subject, op, c.cost, identity))).then(
      (states) => this.aggregate(states, op),
    );
  }

  /** @internal A client key made safe for a Redis key: hashed when long or when it holds braces. */
  subject(key: string): string {
    if (typeof key !== 'string' || key === '') {
      throw new RateLimitConfigError('key', 'must be a non-empty string, e.g. `ip:1.2.3.4` or `user:42`');
    }
    if (key.length <= MAX_SUBJECT_LENGTH && !key.includes('{') && !key.includes('}')) return key;
    return `h:${createHash('sha256').update(key).digest('base64url')}`;
  }

  // ---------------------------------------------------------------------------------------------

  private run(
    key: string,
    options: RateLimitCallOptions,
    op: LimitOp,
    cost: number,
  ): Promise<RateLimitDecision> {
    const subject = this.subject(key);
    return this.decide(
      this.limitsOf(options.limits).map((limit) => ({ limit, subject, cost })),
      op,
    );
  }

  private applyOne<T>(
    limit: ResolvedLimit,
    subject: string,
    op: LimitOp,
    cost: number,
    then: (state: RateLimitState) => T,
  ): Promise<T> {
    const key = this.keyOf(limit, subject);
    if (!this.client.isAvailable()) {
      this.noteFailed(undefined, this.generation);
      try {
        return Promise.resolve(then(this.fallback(limit, key, op, cost)));
      } catch (err) {
        return Promise.reject(err as Error);
      }
    }
    const gen = this.generation;
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
      this.local.apply(key, limit.local, op, Math.min(cost, Number.MAX_SAFE_INTEGER)),
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

  /** Redis could not be used for a call: switch to the insurance limiter (once per outage). */
  private noteFailed(err: unknown, gen: number): void {
    if (this.mode !== 'redis' || gen !== this.generation) return;
    this.mode = 'local';
    this.generation++;
    this.localSince = Date.now();
    this.counts.switches.toLocal++;
    this.metrics.switched('local');
    this.reason = describeFailure(err, this.client);
    const enabled = this.client.fallbackEnabled;
    this.logger.warn(
      `Redis client "${this.client.name}" is unavailable (${this.reason}); ` +
        (enabled
          ? `rate limits are enforced in memory at points / ${this.config.instances} instance(s) per instance`
          : `fallbacks are disabled (REDIS_FALLBACK_ENABLED=false), so non-critical limits are not enforced`) +
        `; critical limits refuse with 503. Back to Redis by itself when it answers.`,
    );
  }

  private limitsOf(arg: RateLimitCallOptions['limits']): ResolvedLimit[] {
    if (arg === undefined) return this.defaultLimits;
    if (typeof arg === 'string') return this.policy(arg, 'limits');
    if (!Array.isArray(arg)) return [this.limitObject(arg as RateLimitLimit)];
    const out: ResolvedLimit[] = [];
    for (const item of arg as ReadonlyArray<string | RateLimitLimit>) {
      if (typeof item === 'string') out.push(...this.policy(item, 'limits'));
      else out.push(this.limitObject(item));
    }
    if (out.length === 0) throw new RateLimitConfigError('limits', 'must name at least one limit');
    return out;
  }

  private policy(name: string, field: string): ResolvedLimit[] {
    const found = this.policyLimits.get(name);
    if (!found) {
      const known = [...this.policyLimits.keys()];
      throw new RateLimitConfigError(
        field,
        `names the policy "${name}", which is not configured; ` +
          (known.length
            ? `configured: ${known.join(', ')}`
            : 'add it to RateLimitModule.forRoot({ policies })'),
      );
    }
    return found;
  }

  private limitObject(limit: RateLimitLimit): ResolvedLimit {
    const cached = this.byObject.get(limit);
    if (cached) return cached;
    const resolved = this.resolve(limit, 'default', 'limits');
    this.byObject.set(limit, resolved);
    return resolved;
  }

  /**
   * Merge a limit over the module defaults, validate it, and return the shared resolved instance for its
   * shape (so equal limits share one rate-limiter-flexible instance and one key space).
   */
  private resolve(
    limit: RateLimitOptions,
    defaultName: string,
    field: string,
    index = -1,
    defaultLabel?: string,
  ): ResolvedLimit {
    checkLimitShape(limit, field);
    const spec = validateLimit(specOf(limit, this.config.defaults, defaultName), `${field}.`);
    const id = `${spec.name}|${spec.algorithm}|${spec.points}|${spec.duration}|${spec.blockDuration}|${spec.critical}|${spec.shadow}`;
    const known = this.byId.get(id);
    if (known) return known;
    if (this.byId.size >= MAX_LIMIT_CACHE) this.byId.clear();
    const localPoints = Math.max(1, Math.floor(spec.points / this.config.instances));
    const suffix = index >= 0 ? `-${index}` : '';
    const label =
      limit.name ??
      (defaultLabel
        ? `${defaultLabel}${suffix}`
        : `${spec.points}-per-${formatDuration(spec.duration)}${suffix}`);
    const resolved: ResolvedLimit = {
      spec,
      label,
      algorithm: spec.algorithm,
      points: spec.points,
      duration: spec.duration,
      blockDuration: spec.blockDuration,
      keyBase: `${this.prefix}:${ALGORITHM_TAG[spec.algorithm]}:${spec.name}:${spec.points}:${spec.duration}`,
      localPoints,
      local: {
        algorithm: spec.algorithm,
        points: localPoints,
        duration: spec.duration,
        blockDuration: spec.blockDuration,
      },
    };
    this.byId.set(id, resolved);
    return resolved;
  }

  private buildRoute(handler: object, cls: object): RouteLimits | null {
    const reflector = this.reflector ?? new Reflector();
    const h = handler as (...args: unknown[]) => unknown;
    const c = cls as new (...args: unknown[]) => unknown;
    const handlerSkip = reflector.get(SKIP_RATE_LIMIT_METADATA, h);
    if (handlerSkip === true) return null;
    let list = reflector.get(RATE_LIMIT_METADATA, h);
    if (!list) {
      if (handlerSkip !== false && reflector.get(SKIP_RATE_LIMIT_METADATA, c) === true) return null;
      list = reflector.get(RATE_LIMIT_METADATA, c);
    }
    if (!list) {
      if (!this.config.limitAllRoutes) return null;
      list = [];
    }
    const route = `${c.name}.${h.name}`;
    const at = `@RateLimit(${route})`;
    const items: Array<string | RateLimitOptions> = list.length ? [...list] : [{}];
    const entries: RouteLimit[] = [];
    // Limits of one route are told apart by their shape; only two of the same shape need an index.
    const shapes = items.map((item) => {
      if (typeof item === 'string') return item;
      const s = specOf(item, this.config.defaults, route);
      return `${s.algorithm}:${s.points}:${s.duration}`;
    });
    items.forEach((item, i) => {
      const field = items.length > 1 ? `${at}[${i}]` : at;
      if (typeof item === 'string') {
        const named = this.config.policies.get(item);
        const resolved = this.policy(item, field);
        resolved.forEach((limit, j) => {
          const spec = specOf(named![j], this.config.defaults, item);
          entries.push({ limit, key: spec.key, cost: spec.cost });
        });
        return;
      }
      const twin = shapes.indexOf(shapes[i]) !== shapes.lastIndexOf(shapes[i]);
      const name = twin ? `${route}-${i}` : route;
      const limit = this.resolve(item, name, field, twin ? i : -1);
      const spec = specOf(item, this.config.defaults, name);
      entries.push({ limit, key: spec.key, cost: spec.cost });
    });
    return {
      entries,
      keyFunctions: entries.some((e) => typeof e.key === 'function'),
      policyHeader: entries
        .filter((e) => !e.limit.spec.shadow)
        .map(
          (e) =>
            `"${e.limit.label}";q=${e.limit.spec.points};w=${Math.max(1, Math.ceil(e.limit.spec.duration / 1_000))}`,
        )
        .join(', '),
    };
  }

  private costOf(limit: ResolvedLimit, cost: number | undefined): number {
    if (cost === undefined) return typeof limit.spec.cost === 'number' ? limit.spec.cost : 1;
    this.positive('cost', cost);
    if (cost > limit.spec.points) {
      throw new RateLimitConfigError(
        'cost',
        `(${cost}) is larger than the points (${limit.spec.points}) of the limit "${limit.label}"; it could never be admitted`,
      );
    }
    return cost;
  }

  private positive(field: string, value: number): number {
    if (!Number.isInteger(value) || value < 1) {
      throw new RateLimitConfigError(field, `must be an integer ≥ 1; got ${String(value)}`);
    }
    return value;
  }

  private keyOf(limit: ResolvedLimit, subject: string): string {
    return `${limit.keyBase}:{${subject}}`;
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

/** `1s`, `1m`, `1h`, `1d`, or `1500ms`. */
function formatDuration(ms: number): string {
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1_000],
  ] as const) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

function describeFailure(err: unknown, client: ManagedRedisClient): string {
  if (err === undefined) {
    return `connection ${client.getConnectionState()}, circuit breaker ${client.getBreakerState()}`;
  }
  if (err instanceof Error) {
    const reason = (err as { reason?: string }).reason;
    const text = reason ? `${err.name}: ${reason}` : `${err.name}: ${err.message}`;
    return text.length > 200 ? `${text.slice(0, 200)}…` : text;
  }
  return String(err).slice(0, 200);
}
