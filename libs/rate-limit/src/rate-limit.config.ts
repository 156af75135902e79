import { LIMITS, RATE_LIMIT_ALGORITHMS, RATE_LIMIT_DEFAULTS } from './rate-limit.constants';
import { RateLimitConfigError } from './rate-limit.errors';
import type {
  RateLimitAlgorithm,
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
  'key',
  'cost',
];

/** Counter and policy names: safe inside Redis keys and as a structured-field string in headers. */
export const NAME_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * Apply defaults to the module options and validate them.
 * @throws RateLimitConfigError naming the field and the fix
 */
export function resolveRateLimitConfig(options: RateLimitModuleOptions = {}): ResolvedRateLimitConfig {
  if (options === null || typeof options !== 'object') {
    throw new RateLimitConfigError('options', 'must be an object, e.g. { points: 100, duration: 60_000 }');
  }
  rejectUnknown(options, MODULE_KEYS, '');
  const d = RATE_LIMIT_DEFAULTS;
  const trustProxy = options.trustProxy ?? d.trustProxy;
  if ((trustProxy as unknown) === true || (trustProxy as unknown) === '*' || trustProxy === Infinity) {
    throw new RateLimitConfigError(
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
    key: options.key ?? 'ip',
    cost: options.cost ?? d.cost,
  };
  validateLimit({ name: 'default', ...defaults }, '');
  if (options.cost !== undefined && typeof options.cost !== 'number') {
    throw new RateLimitConfigError('cost', 'must be an integer here; use a function only in @RateLimit()');
  }
  const policies = new Map<string, RateLimitOptions[]>();
  const rawPolicies = options.policies ?? {};
  if (typeof rawPolicies !== 'object' || rawPolicies === null || Array.isArray(rawPolicies)) {
    throw new RateLimitConfigError(
      'policies',
      'must be an object of named limits, e.g. { login: { points: 5 } }',
    );
  }
  for (const [name, value] of Object.entries(rawPolicies)) {
    if (!NAME_PATTERN.test(name)) {
      throw new RateLimitConfigError(
        `policies.${name}`,
        'has an invalid name; use 1–64 of A-Z a-z 0-9 _ . -',
      );
    }
    const list = Array.isArray(value) ? value : [value];
    if (list.length === 0) throw new RateLimitConfigError(`policies.${name}`, 'must hold at least one limit');
    list.forEach((limit, i) => {
      const field = `policies.${name}${list.length > 1 ? `[${i}]` : ''}`;
      checkLimitShape(limit, field);
      validateLimit(specOf(limit, defaults, name), `${field}.`);
    });
    policies.set(name, list);
  }
  const local = options.local ?? {};
  if (local.maxEntries !== undefined) integer('local.maxEntries', local.maxEntries, 1, 100_000_000);
  if (local.maxBytes !== undefined) integer('local.maxBytes', local.maxBytes, 1, 17_179_869_184);
  const config: ResolvedRateLimitConfig = {
    defaults,
    limitAllRoutes: bool('limitAllRoutes', options.limitAllRoutes ?? d.limitAllRoutes),
    policies,
    client: options.client ?? d.client,
    instances: integer('instances', options.instances ?? d.instances, 1, LIMITS.maxInstances),
    trustProxy: integer('trustProxy', trustProxy, 0, LIMITS.maxTrustProxy),
    ipv6Prefix: integer('ipv6Prefix', options.ipv6Prefix ?? d.ipv6Prefix, 1, 128),
    headers: bool('headers', options.headers ?? d.headers),
    legacyHeaders: bool('legacyHeaders', options.legacyHeaders ?? d.legacyHeaders),
    failClosedRetryAfter: integer(
      'failClosedRetryAfter',
      options.failClosedRetryAfter ?? d.failClosedRetryAfter,
      1,
      3_600_000,
    ),
    local,
    userId: options.userId ?? defaultUserId,
  };
  if (typeof config.client !== 'string' || config.client === '') {
    throw new RateLimitConfigError('client', 'must be the name of a @redwing/redis client, e.g. "default"');
  }
  if (typeof config.userId !== 'function') {
    throw new RateLimitConfigError('userId', 'must be a function (user) => id');
  }
  return config;
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
  if (limit === null || typeof limit !== 'object' || Array.isArray(limit)) {
    throw new RateLimitConfigError(field, 'must be a limit object, e.g. { points: 10, duration: 1_000 }');
  }
  rejectUnknown(limit as Record<string, unknown>, LIMIT_KEYS, `${field}.`);
  const l = limit as RateLimitOptions;
  if (l.name !== undefined && (typeof l.name !== 'string' || !NAME_PATTERN.test(l.name))) {
    throw new RateLimitConfigError(`${field}.name`, 'must be 1–64 of A-Z a-z 0-9 _ . -');
  }
  if (l.points !== undefined) integer(`${field}.points`, l.points, 1, LIMITS.maxPoints);
  if (l.duration !== undefined) integer(`${field}.duration`, l.duration, 1, LIMITS.maxDuration, ' ms');
  if (l.blockDuration !== undefined) {
    integer(`${field}.blockDuration`, l.blockDuration, 0, LIMITS.maxDuration, ' ms');
  }
  if (l.algorithm !== undefined) algorithm(`${field}.algorithm`, l.algorithm);
  if (l.critical !== undefined) bool(`${field}.critical`, l.critical);
  if (l.shadow !== undefined) bool(`${field}.shadow`, l.shadow);
  if (l.key !== undefined) keyOption(`${field}.key`, l.key);
  if (l.cost !== undefined && typeof l.cost !== 'function') {
    integer(`${field}.cost`, l.cost, 1, LIMITS.maxPoints);
  }
}

/**
 * Validate a fully merged limit.
 * @param prefix field prefix for messages, e.g. `policies.login.` or `@RateLimit(A.b).`
 * @throws RateLimitConfigError
 */
export function validateLimit(spec: LimitSpec, prefix: string): LimitSpec {
  if (!NAME_PATTERN.test(spec.name)) {
    throw new RateLimitConfigError(`${prefix}name`, 'must be 1–64 of A-Z a-z 0-9 _ . -');
  }
  integer(`${prefix}points`, spec.points, 1, LIMITS.maxPoints);
  integer(`${prefix}duration`, spec.duration, 1, LIMITS.maxDuration, ' ms');
  integer(`${prefix}blockDuration`, spec.blockDuration, 0, LIMITS.maxDuration, ' ms');
  algorithm(`${prefix}algorithm`, spec.algorithm);
  bool(`${prefix}critical`, spec.critical);
  bool(`${prefix}shadow`, spec.shadow);
  keyOption(`${prefix}key`, spec.key);
  if (typeof spec.cost === 'number') {
    integer(`${prefix}cost`, spec.cost, 1, LIMITS.maxPoints);
    if (spec.cost > spec.points) {
      throw new RateLimitConfigError(
        `${prefix}cost`,
        `(${spec.cost}) is larger than points (${spec.points}); no request could ever be admitted`,
      );
    }
  } else if (typeof spec.cost !== 'function') {
    throw new RateLimitConfigError(
      `${prefix}cost`,
      'must be an integer ≥ 1 or a function (context) => number',
    );
  }
  if (spec.algorithm === 'fixed-window') {
    // rate-limiter-flexible counts in whole seconds (EX); a window under 1 s would get no TTL at all.
    for (const field of ['duration', 'blockDuration'] as const) {
      if (spec[field] % 1_000 !== 0) {
        throw new RateLimitConfigError(
          `${prefix}${field}`,
          `(${spec[field]} ms) must be whole seconds for the fixed-window algorithm (e.g. 1_000, 60_000); ` +
            `use algorithm 'sliding-window' or 'token-bucket' for millisecond windows`,
        );
      }
    }
  }
  return spec;
}

function rejectUnknown(obj: object, known: ReadonlyArray<string>, prefix: string): void {
  for (const key of Object.keys(obj)) {
    if (known.includes(key)) continue;
    const guess = closest(key, known);
    throw new RateLimitConfigError(
      `${prefix}${key}`,
      `is an unknown option${guess ? `; did you mean ${guess}?` : `; known: ${known.join(', ')}`}`,
    );
  }
}

function integer(field: string, value: unknown, min: number, max: number, unit = ''): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new RateLimitConfigError(
      field,
      `must be an integer from ${min} to ${max}${unit}; got ${describe(value)}`,
    );
  }
  return value;
}

function bool(field: string, value: unknown): boolean {
  if (typeof value !== 'boolean')
    throw new RateLimitConfigError(field, `must be true or false; got ${describe(value)}`);
  return value;
}

function algorithm(field: string, value: unknown): void {
  if (!RATE_LIMIT_ALGORITHMS.includes(value as RateLimitAlgorithm)) {
    throw new RateLimitConfigError(
      field,
      `must be one of ${RATE_LIMIT_ALGORITHMS.map((a) => `'${a}'`).join(', ')}; got ${describe(value)}`,
    );
  }
}

function keyOption(field: string, value: unknown): void {
  if (value !== 'ip' && value !== 'user' && typeof value !== 'function') {
    throw new RateLimitConfigError(
      field,
      `must be 'ip', 'user' or a function (context) => string; got ${describe(value)}`,
    );
  }
}

/** Describe a value for a message without echoing long or secret-looking strings. */
function describe(value: unknown): string {
  if (typeof value === 'string') return value.length <= 24 ? JSON.stringify(value) : 'a string';
  if (typeof value === 'number' || typeof value === 'boolean' || value == null) return String(value);
  return typeof value;
}

function closest(word: string, candidates: ReadonlyArray<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      bestDistance = d;
      best = c;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length];
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
