import { createHash } from 'node:crypto';
import { Inject, Injectable, type ExecutionContext } from '@nestjs/common';
import { RedisClientManager } from '@redwing/redis';
import { clientIpKey, type ClientIpSource } from './client-ip';
import {
  checkLimitShape,
  specOf,
  validateLimit,
  type LimitSpec,
  type ResolvedRateLimitConfig,
} from './rate-limit.config';
import { ALGORITHM_TAG, MAX_SUBJECT_LENGTH, RATE_LIMIT_CONFIG, RATE_LIMIT_LIB } from './rate-limit.constants';
import { RateLimitConfigError } from './rate-limit.errors';
import type {
  RateLimitCallOptions,
  RateLimitKey,
  RateLimitLimit,
  RateLimitOptions,
} from './rate-limit.interfaces';
import type { StoreLimit } from './redis-limit-store';

/** A limit ready to count: validated spec, key base, local shape, cached limiter. */
export interface ResolvedLimit extends StoreLimit {
  spec: LimitSpec;
  /** Policy name in the `RateLimit` headers. */
  label: string;
  /** Points this instance grants on its own while Redis is unavailable. */
  localPoints: number;
  /** Counted in slices leased from Redis (`counting: 'leased'`, fixed window only). */
  leased: boolean;
  local: { algorithm: LimitSpec['algorithm']; points: number; duration: number; blockDuration: number };
}

/** One limit of a route with what is resolved per request: who is counted and what a request costs. */
export interface RouteLimit {
  limit: ResolvedLimit;
  key: RateLimitKey;
  cost: number | ((context: never) => number);
  /** `@RateLimit(Controller.method)` (with `[i]` when the route has several limits), for messages. */
  field: string;
}

/** The limits of one route, resolved once. */
export interface RouteLimits {
  entries: RouteLimit[];
  /** Some limit's key is a function (possibly async); the others resolve synchronously. */
  keyFunctions: boolean;
  /** Pre-built `RateLimit-Policy` value (enforced limits only), or '' when every limit is in shadow mode. */
  policyHeader: string;
}

/** One limit to apply to one subject. */
export interface LimitCall {
  limit: ResolvedLimit;
  subject: string;
  cost: number;
}

/** The parts of an HTTP request (Node, Express or Fastify) keys are resolved from. */
interface KeyedRequest {
  user?: unknown;
  raw?: { user?: unknown };
}

/** How a limit object becomes a {@link ResolvedLimit}. */
interface ResolveAs {
  /** Counter name when the limit has none. */
  name: string;
  /** Field path for messages, e.g. `policies.login` or `@RateLimit(A.b)[1]`. */
  field: string;
  /** Header label when the limit has no name (otherwise `<points>-per-<duration>`). */
  label?: string;
  /** Position among limits of the same shape (appended to the label), or none. */
  index?: number;
}

const MAX_LIMIT_CACHE = 10_000;

/**
 * Route-limit resolution: turns limit objects, policy names and the module defaults into validated,
 * shared {@link ResolvedLimit}s (with their Redis key base), the items of a `@RateLimit()` into a route's
 * {@link RouteLimits}, and a request into the subject each limit counts (`ip:` after `trustProxy` hops and
 * the IPv6 prefix, `user:` of the authenticated user, or `key:` of a key function). It decides nothing:
 * `RateLimitService` counts what it resolves.
 */
@Injectable()
export class LimitResolver {
  private readonly prefix: string;
  private readonly byObject = new WeakMap<object, ResolvedLimit>();
  private readonly byId = new Map<string, ResolvedLimit>();
  private readonly policyLimits = new Map<string, ResolvedLimit[]>();
  private readonly defaultLimits: ResolvedLimit[];

  constructor(
    @Inject(RATE_LIMIT_CONFIG) readonly config: ResolvedRateLimitConfig,
    manager: RedisClientManager,
  ) {
    this.prefix = manager.key(RATE_LIMIT_LIB);
    this.defaultLimits = [this.resolve({ name: 'default' }, { name: 'default', field: 'limits' })];
    for (const [name, list] of config.policies) {
      const several = list.length > 1;
      this.policyLimits.set(
        name,
        list.map((limit, i) =>
          this.resolve(limit, {
            name,
            field: `policies.${name}${several ? `[${i}]` : ''}`,
            label: name,
            ...(several ? { index: i } : {}),
          }),
        ),
      );
    }
  }

  /**
   * The limits of a service call: the module defaults, policies by name, limit objects, or a list of them.
   * @throws RateLimitConfigError when a limit is invalid or names an unknown policy
   */
  limits(arg: RateLimitCallOptions['limits']): ResolvedLimit[] {
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

  /**
   * The points a service call consumes on `limit`: `cost`, or the limit's own cost.
   * @throws RateLimitConfigError when `cost` is not an integer ≥ 1 or exceeds the limit's points
   */
  cost(limit: ResolvedLimit, cost: number | undefined): number {
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

  /**
   * `value` when it is an integer ≥ 1.
   * @throws RateLimitConfigError naming `field`
   */
  positive(field: string, value: number): number {
    if (!Number.isInteger(value) || value < 1) {
      throw new RateLimitConfigError(field, `must be an integer ≥ 1; got ${String(value)}`);
    }
    return value;
  }

  /**
   * The limits of a route from its `@RateLimit()` items (an empty list: the module defaults), validated with
   * the module defaults applied.
   * @param route `Controller.method`, the default counter name and the field of messages
   * @throws RateLimitConfigError naming `@RateLimit(Controller.method)`
   */
  route(list: ReadonlyArray<string | RateLimitOptions>, route: string): RouteLimits {
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
        this.policy(item, field).forEach((limit, j) => {
          const spec = specOf(named![j], this.config.defaults, item);
          entries.push({ limit, key: spec.key, cost: spec.cost, field });
        });
        return;
      }
      const twin = shapes.indexOf(shapes[i]) !== shapes.lastIndexOf(shapes[i]);
      const name = twin ? `${route}-${i}` : route;
      const limit = this.resolve(item, { name, field, ...(twin ? { index: i } : {}) });
      const spec = specOf(item, this.config.defaults, name);
      entries.push({ limit, key: spec.key, cost: spec.cost, field });
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

  /**
   * What each limit of a route counts for this request: subjects and costs. Synchronous unless a key is a
   * function (which may be async), so a route without key functions costs one promise (the decision).
   * @throws RateLimitConfigError when a cost function returns something other than an integer from 1 to points
   */
  calls(
    route: RouteLimits,
    context: ExecutionContext,
    request: KeyedRequest,
  ): LimitCall[] | Promise<LimitCall[]> {
    if (route.keyFunctions) return this.callsAsync(route, context, request);
    const calls: LimitCall[] = [];
    let ip: string | undefined;
    for (const entry of route.entries) {
      const subject =
        entry.key === 'user'
          ? (this.userKey(request) ?? (ip ??= this.identify(request)))
          : (ip ??= this.identify(request));
      calls.push({
        limit: entry.limit,
        subject: this.subject(subject),
        cost: this.routeCost(entry, context),
      });
    }
    return calls;
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

  /**
   * A client key made safe for a Redis key: hashed when long or when it holds braces.
   * @throws RateLimitConfigError when `key` is not a non-empty string
   */
  subject(key: string): string {
    if (typeof key !== 'string' || key === '') {
      throw new RateLimitConfigError('key', 'must be a non-empty string, e.g. `ip:1.2.3.4` or `user:42`');
    }
    if (key.length <= MAX_SUBJECT_LENGTH && !key.includes('{') && !key.includes('}')) return key;
    return `h:${createHash('sha256').update(key).digest('base64url')}`;
  }

  /** The Redis key of `subject` under `limit`: `<keyBase>:{<subject>}` (the subject is the hash tag). */
  storeKey(limit: ResolvedLimit, subject: string): string {
    return `${limit.keyBase}:{${subject}}`;
  }

  // ---------------------------------------------------------------------------------------------

  private async callsAsync(
    route: RouteLimits,
    context: ExecutionContext,
    request: KeyedRequest,
  ): Promise<LimitCall[]> {
    const calls: LimitCall[] = [];
    let ip: string | undefined;
    for (const entry of route.entries) {
      const key = entry.key;
      let subject: string;
      if (key === 'ip') subject = ip ??= this.identify(request);
      else if (key === 'user') subject = this.userKey(request) ?? (ip ??= this.identify(request));
      else {
        const custom = await key(context);
        subject =
          custom === undefined || custom === null || custom === ''
            ? (ip ??= this.identify(request))
            : `key:${custom}`;
      }
      calls.push({
        limit: entry.limit,
        subject: this.subject(subject),
        cost: this.routeCost(entry, context),
      });
    }
    return calls;
  }

  private routeCost(entry: RouteLimit, context: ExecutionContext): number {
    const cost = entry.cost;
    if (typeof cost === 'number') return cost;
    const value = cost(context as never);
    const points = entry.limit.spec.points;
    if (!Number.isInteger(value) || value < 1 || value > points) {
      throw new RateLimitConfigError(
        `${entry.field}.cost`,
        `(a function) returned ${String(value)}; it must return an integer from 1 to the limit's points (${points})`,
      );
    }
    return value;
  }

  /** `user:<id>` of the authenticated user (`request.user`; on Fastify also what middleware set on `request.raw`). */
  private userKey(request: KeyedRequest): string | undefined {
    const user = request.user ?? request.raw?.user;
    if (user === undefined || user === null) return undefined;
    const id = this.config.userId(user);
    return id === undefined || id === null || id === '' ? undefined : `user:${id}`;
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
    const resolved = this.resolve(limit, { name: 'default', field: 'limits' });
    this.byObject.set(limit, resolved);
    return resolved;
  }

  /**
   * Merge a limit over the module defaults, validate it, and return the shared resolved instance for its
   * shape (so equal limits share one rate-limiter-flexible instance and one key space).
   */
  private resolve(limit: RateLimitOptions, as: ResolveAs): ResolvedLimit {
    checkLimitShape(limit, as.field);
    const spec = validateLimit(specOf(limit, this.config.defaults, as.name), `${as.field}.`);
    const id = `${spec.name}|${spec.algorithm}|${spec.points}|${spec.duration}|${spec.blockDuration}|${spec.critical}|${spec.shadow}|${spec.counting}`;
    const known = this.byId.get(id);
    if (known) return known;
    if (this.byId.size >= MAX_LIMIT_CACHE) this.byId.clear();
    const localPoints = Math.max(1, Math.floor(spec.points / this.config.instances));
    const suffix = as.index !== undefined ? `-${as.index}` : '';
    const label =
      limit.name ??
      (as.label ? `${as.label}${suffix}` : `${spec.points}-per-${formatDuration(spec.duration)}${suffix}`);
    const resolved: ResolvedLimit = {
      spec,
      label,
      algorithm: spec.algorithm,
      points: spec.points,
      duration: spec.duration,
      blockDuration: spec.blockDuration,
      keyBase: `${this.prefix}:${ALGORITHM_TAG[spec.algorithm]}:${spec.name}:${spec.points}:${spec.duration}`,
      localPoints,
      leased: spec.counting === 'leased',
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
