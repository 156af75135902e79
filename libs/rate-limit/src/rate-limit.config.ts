import { describeValue, OptionChecker } from '@redwing/redis';
import {
  LIMITS,
  RATE_LIMIT_ALGORITHMS,
  RATE_LIMIT_COUNTINGS,
  RATE_LIMIT_DEFAULTS,
} from './rate-limit.constants';
import { RateLimitConfigError } from './rate-limit.errors';
import type {
  RateLimitAlgorithm,
  RateLimitCounting,
  RateLimitKey,
  RateLimitModuleOptions,
  RateLimitOptions,
} from './rate-limit.interfaces';

/** A limit with every field decided (module defaults applied) and validated. */
export interface LimitSpec {
  name: string;
  points: number;
  duration: number;
  algorithm: RateLimitAlgorithm;
  blockDuration: number;
  critical: boolean;
  shadow: boolean;
  counting: RateLimitCounting;
  key: RateLimitKey;
  cost: number | ((context: never) => number);
}

/** The module options after defaults and validation. */
export interface ResolvedRateLimitConfig {
  defaults: Omit<LimitSpec, 'name'>;
  limitAllRoutes: boolean;
  policies: Map<string, RateLimitOptions[]>;
  client: string;
  instances: number;
  trustProxy: number;
  ipv6Prefix: number;
  headers: boolean;
  legacyHeaders: boolean;
  failClosedRetryAfter: number;
  local: { maxEntries?: number; maxBytes?: number };
  userId: (user: unknown) => string | number | null | undefined;
}

const MODULE_KEYS: ReadonlyArray<keyof RateLimitModuleOptions> = [
  'points',
  'duration',
  'algorithm',
  'key',
  'blockDuration',
  'cost',
  'critical',
  'shadow',
  'counting',
  'limitAllRoutes',
  'policies',
  'client',
  'instances',
  'trustProxy',
  'ipv6Prefix',
  'headers',
  'legacyHeaders',
  'failClosedRetryAfter',
  'local',
  'userId',
];

const LIMIT_KEYS: ReadonlyArray<keyof RateLimitOptions> = [
  'name',
  'points',
  'duration',
  'algorithm',
  'blockDuration',
  'critical',
  'shadow',
  'counting',
  'key',
  'cost',
];

/** Counter and policy names: safe inside Redis keys and as a structured-field string in headers. */
export const NAME_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

/** The shared option checks of `@redwing/redis`, throwing this lib's {@link RateLimitConfigError}. */
const check = new OptionChecker((field, message) => new RateLimitConfigError(field, message));
const SEE_ALSO = 'docs/rate-limit.md (Options)';
const NAME_HINT = '1–64 of A-Z a-z 0-9 _ . -';

/**
 * Apply defaults to the module options and validate them.
 * @throws RateLimitConfigError naming the field and the fix
 */
export function resolveRateLimitConfig(options: RateLimitModuleOptions = {}): ResolvedRateLimitConfig {
  const o = check.object(options, 'options', 'an object, e.g. { points: 100, duration: 60_000 }');
  check.keys(o, MODULE_KEYS, '', SEE_ALSO);
  const d = RATE_LIMIT_DEFAULTS;
  const trustProxy = o.trustProxy ?? d.trustProxy;
  if (trustProxy === true || trustProxy === '*' || trustProxy === Infinity) {
    throw check.fail(
      'trustProxy',
      'must be the number of proxies in front of the app (0 = none, 1 = one load balancer, …). ' +
        '"Trust every proxy" is refused: any client could choose its own address with X-Forwarded-For ' +
        'and escape every per-IP limit.',
    );
  }
  const defaults: Omit<LimitSpec, 'name'> = {
    points: options.points ?? d.points,
    duration: options.duration ?? d.duration,
    algorithm: options.algorithm ?? d.algorithm,
    blockDuration: options.blockDuration ?? d.blockDuration,
    critical: options.critical ?? d.critical,
    shadow: options.shadow ?? d.shadow,
    counting: options.counting ?? d.counting,
    key: options.key ?? 'ip',
    cost: options.cost ?? d.cost,
  };
  counting('counting', defaults.counting);
  // The module's counting applies to fixed-window limits only (the others are always exact).
  validateLimit(
    {
      name: 'default',
      ...defaults,
      counting: defaults.algorithm === 'fixed-window' ? defaults.counting : 'exact',
    },
    '',
  );
  if (options.cost !== undefined && typeof options.cost !== 'number') {
    throw check.fail('cost', 'must be an integer here; use a function only in @RateLimit()');
  }
  const policies = new Map<string, RateLimitOptions[]>();
  const rawPolicies =
    check.optionalObject(
      o.policies,
      'policies',
      'an object of named limits, e.g. { login: { points: 5 } }',
    ) ?? {};
  for (const [name, value] of Object.entries(rawPolicies)) {
    if (!NAME_PATTERN.test(name)) {
      throw check.fail(`policies.${name}`, 'has an invalid name; use 1–64 of A-Z a-z 0-9 _ . -');
    }
    const list: unknown[] = Array.isArray(value) ? value : [value];
    if (list.length === 0) throw check.fail(`policies.${name}`, 'must hold at least one limit');
    list.forEach((limit, i) => {
      const field = `policies.${name}${list.length > 1 ? `[${i}]` : ''}`;
      checkLimitShape(limit, field);
      validateLimit(specOf(limit, defaults, name), `${field}.`);
    });
    policies.set(name, list as RateLimitOptions[]);
  }
  const local = check.optionalObject(o.local, 'local', 'an object, e.g. { maxEntries: 10_000 }') ?? {};
  check.keys(local, ['maxEntries', 'maxBytes'], 'local.', SEE_ALSO);
  return {
    defaults,
    limitAllRoutes: check.bool(o.limitAllRoutes, 'limitAllRoutes') ?? d.limitAllRoutes,
    policies,
    client: check.string(o.client, 'client', { nonEmpty: true }) ?? d.client,
    instances: check.int(o.instances, 'instances', { min: 1, max: LIMITS.maxInstances }) ?? d.instances,
    trustProxy: check.int(trustProxy, 'trustProxy', { min: 0, max: LIMITS.maxTrustProxy }) ?? d.trustProxy,
    ipv6Prefix: check.int(o.ipv6Prefix, 'ipv6Prefix', { min: 1, max: 128 }) ?? d.ipv6Prefix,
    headers: check.bool(o.headers, 'headers') ?? d.headers,
    legacyHeaders: check.bool(o.legacyHeaders, 'legacyHeaders') ?? d.legacyHeaders,
    failClosedRetryAfter:
      check.duration(o.failClosedRetryAfter, 'failClosedRetryAfter', { max: 3_600_000 }) ??
      d.failClosedRetryAfter,
    local: {
      maxEntries: check.int(local.maxEntries, 'local.maxEntries', { min: 1, max: 100_000_000 }),
      maxBytes: check.int(local.maxBytes, 'local.maxBytes', { min: 1, max: 17_179_869_184, unit: 'bytes' }),
    },
    userId:
      check.fn<ResolvedRateLimitConfig['userId']>(o.userId, 'userId', 'a function (user) => id') ??
      defaultUserId,
  };
}

/** Merge one limit over the defaults (no validation). */
export function specOf(limit: RateLimitOptions, defaults: Omit<LimitSpec, 'name'>, name: string): LimitSpec {
  return {
    name: limit.name ?? name,
    points: limit.points ?? defaults.points,
    duration: limit.duration ?? defaults.duration,
    algorithm: limit.algorithm ?? defaults.algorithm,
    blockDuration: limit.blockDuration ?? defaults.blockDuration,
    critical: limit.critical ?? defaults.critical,
    shadow: limit.shadow ?? defaults.shadow,
    counting:
      limit.counting ??
      ((limit.algorithm ?? defaults.algorithm) === 'fixed-window' ? defaults.counting : 'exact'),
    key: limit.key ?? defaults.key,
    cost: limit.cost ?? defaults.cost,
  };
}

/**
 * The static checks of one limit object as written in a decorator or a call: known fields of the right
 * types. Values that depend on the module defaults are checked by {@link validateLimit} once merged.
 * @throws RateLimitConfigError
 */
export function checkLimitShape(limit: unknown, field: string): asserts limit is RateLimitOptions {
  const l = check.object(limit, field, 'a limit object, e.g. { points: 10, duration: 1_000 }');
  check.keys(l, LIMIT_KEYS, `${field}.`, SEE_ALSO);
  check.string(l.name, `${field}.name`, { pattern: NAME_PATTERN, hint: NAME_HINT });
  check.int(l.points, `${field}.points`, { min: 1, max: LIMITS.maxPoints });
  check.int(l.duration, `${field}.duration`, { min: 1, max: LIMITS.maxDuration, unit: 'ms' });
  check.int(l.blockDuration, `${field}.blockDuration`, { min: 0, max: LIMITS.maxDuration, unit: 'ms' });
  if (l.algorithm !== undefined) algorithm(`${field}.algorithm`, l.algorithm);
  check.bool(l.critical, `${field}.critical`);
  check.bool(l.shadow, `${field}.shadow`);
  if (l.counting !== undefined) counting(`${field}.counting`, l.counting);
  if (l.algorithm !== undefined) leasedNeedsFixedWindow(l.counting, l.algorithm, `${field}.`);
  if (l.key !== undefined) keyOption(`${field}.key`, l.key);
  if (typeof l.cost !== 'function') check.int(l.cost, `${field}.cost`, { min: 1, max: LIMITS.maxPoints });
}

/**
 * Validate a fully merged limit.
 * @param prefix field prefix for messages, e.g. `policies.login.` or `@RateLimit(A.b).`
 * @throws RateLimitConfigError
 */
export function validateLimit(spec: LimitSpec, prefix: string): LimitSpec {
  check.string(spec.name, `${prefix}name`, { pattern: NAME_PATTERN, hint: NAME_HINT });
  check.int(spec.points, `${prefix}points`, { min: 1, max: LIMITS.maxPoints });
  check.int(spec.duration, `${prefix}duration`, { min: 1, max: LIMITS.maxDuration, unit: 'ms' });
  check.int(spec.blockDuration, `${prefix}blockDuration`, { min: 0, max: LIMITS.maxDuration, unit: 'ms' });
  algorithm(`${prefix}algorithm`, spec.algorithm);
  check.bool(spec.critical, `${prefix}critical`);
  check.bool(spec.shadow, `${prefix}shadow`);
  counting(`${prefix}counting`, spec.counting);
  leasedNeedsFixedWindow(spec.counting, spec.algorithm, prefix);
  keyOption(`${prefix}key`, spec.key);
  if (typeof spec.cost === 'number') {
    check.int(spec.cost, `${prefix}cost`, { min: 1, max: LIMITS.maxPoints });
    if (spec.cost > spec.points) {
      throw check.fail(
        `${prefix}cost`,
        `(${spec.cost}) is larger than points (${spec.points}); no request could ever be admitted`,
      );
    }
  } else if (typeof spec.cost !== 'function') {
    throw check.fail(`${prefix}cost`, 'must be an integer ≥ 1 or a function (context) => number');
  }
  if (spec.algorithm === 'fixed-window') {
    // rate-limiter-flexible counts in whole seconds (EX); a window under 1 s would get no TTL at all.
    for (const field of ['duration', 'blockDuration'] as const) {
      if (spec[field] % 1_000 !== 0) {
        throw check.fail(
          `${prefix}${field}`,
          `(${spec[field]} ms) must be whole seconds for the fixed-window algorithm (e.g. 1_000, 60_000); ` +
            `use algorithm 'sliding-window' or 'token-bucket' for millisecond windows`,
        );
      }
    }
  }
  return spec;
}

/** The algorithm names, quoted as they are written in code (the kit's `oneOf` would echo the value). */
function algorithm(field: string, value: unknown): void {
  if (!RATE_LIMIT_ALGORITHMS.includes(value as RateLimitAlgorithm)) {
    throw check.fail(
      field,
      `must be one of ${RATE_LIMIT_ALGORITHMS.map((a) => `'${a}'`).join(', ')}; got ${describeValue(value)}`,
    );
  }
}

function counting(field: string, value: unknown): void {
  if (!RATE_LIMIT_COUNTINGS.includes(value as RateLimitCounting)) {
    throw check.fail(
      field,
      `must be one of ${RATE_LIMIT_COUNTINGS.map((c) => `'${c}'`).join(', ')}; got ${describeValue(value)}`,
    );
  }
}

function leasedNeedsFixedWindow(value: unknown, algorithm: unknown, prefix: string): void {
  if (value !== 'leased' || algorithm === 'fixed-window') return;
  throw check.fail(
    `${prefix}counting`,
    `'leased' works with the fixed-window algorithm only; a ${String(algorithm)} limit is counted exactly ` +
      `(a leased sliding window would date points at their lease, a leased bucket would hold tokens ` +
      `past their refill). Remove counting or use algorithm 'fixed-window'`,
  );
}

function keyOption(field: string, value: unknown): void {
  if (value !== 'ip' && value !== 'user' && typeof value !== 'function') {
    throw check.fail(
      field,
      `must be 'ip', 'user' or a function (context) => string; got ${describeValue(value)}`,
    );
  }
}

/** `user.id ?? user.sub ?? user.userId`, or the user itself when it is a string or number. */
export function defaultUserId(user: unknown): string | number | null | undefined {
  if (typeof user === 'string' || typeof user === 'number') return user;
  if (user && typeof user === 'object') {
    const u = user as Record<string, unknown>;
    for (const field of ['id', 'sub', 'userId']) {
      const v = u[field];
      if (typeof v === 'string' || typeof v === 'number') return v;
    }
  }
  return undefined;
}
