import { CACHE_DEFAULTS, DEFAULT_PROFILE, MAX_DURATION } from './cache.constants';
import { CacheConfigError } from './cache.errors';
import type {
  CacheEarlyRefreshOptions,
  CacheLockOptions,
  CacheModuleOptions,
  CacheProfileOptions,
} from './cache.interfaces';

/** A profile with every default applied. */
export interface ResolvedProfile {
  name: string;
  ttl: number;
  staleWhileRevalidate: number;
  staleIfError: number;
  /** XFetch beta; 0 = early refresh off. */
  earlyRefresh: number;
  l1: { maxEntries: number; maxBytes: number; ttl: number } | null;
  lock: { ttl: number; wait: number } | null;
}

/** The module options with every default applied, validated. */
export interface ResolvedCacheConfig {
  client: string;
  profiles: Map<string, ResolvedProfile>;
  compression: { threshold: number; level: number } | null;
  maxValueSize: number;
  invalidation: boolean;
  maxDeferredInvalidations: number;
  userKey: ((request: any) => string | number | undefined | null) | undefined;
}

const PROFILE_NAME = /^[A-Za-z0-9_-]{1,64}$/;
const PROFILE_FIELDS = ['ttl', 'staleWhileRevalidate', 'staleIfError', 'earlyRefresh', 'l1', 'lock'];
const MODULE_FIELDS = [
  ...PROFILE_FIELDS,
  'client',
  'profiles',
  'compression',
  'maxValueSize',
  'invalidation',
  'maxDeferredInvalidations',
  'http',
  'isGlobal',
];

/**
 * Validates `CacheModule` options and applies defaults. Every message names the option (dotted path) and
 * says what is allowed.
 * @throws CacheConfigError on the first invalid option
 */
export function resolveCacheConfig(options: CacheModuleOptions = {}): ResolvedCacheConfig {
  if (!isObject(options)) throw new CacheConfigError('options', 'must be an object');
  unknownKeys(options, MODULE_FIELDS, '');
  const client = options.client ?? CACHE_DEFAULTS.client;
  if (typeof client !== 'string' || !/^[A-Za-z0-9_-]{1,32}$/.test(client)) {
    throw new CacheConfigError('client', 'must name a @redwing/redis client (1–32 of A-Z a-z 0-9 _ -)');
  }
  const base = resolveProfile(DEFAULT_PROFILE, options, undefined, '');
  const profiles = new Map<string, ResolvedProfile>([[DEFAULT_PROFILE, base]]);
  if (options.profiles !== undefined) {
    if (!isObject(options.profiles)) throw new CacheConfigError('profiles', 'must be an object of profiles');
    for (const [name, profile] of Object.entries(options.profiles)) {
      if (!PROFILE_NAME.test(name)) {
        throw new CacheConfigError(
          `profiles.${name}`,
          'is not a valid profile name (1–64 of A-Z a-z 0-9 _ -)',
        );
      }
      if (!isObject(profile)) throw new CacheConfigError(`profiles.${name}`, 'must be an object');
      unknownKeys(profile, PROFILE_FIELDS, `profiles.${name}.`);
      profiles.set(name, resolveProfile(name, profile, base, `profiles.${name}.`));
    }
  }

  let compression: ResolvedCacheConfig['compression'] = null;
  if (options.compression !== false) {
    const c = options.compression ?? {};
    if (!isObject(c)) throw new CacheConfigError('compression', 'must be false or { threshold, level }');
    unknownKeys(c, ['threshold', 'level'], 'compression.');
    compression = {
      threshold: int('compression.threshold', c.threshold, CACHE_DEFAULTS.compression.threshold, 1, 2 ** 31),
      level: int('compression.level', c.level, CACHE_DEFAULTS.compression.level, 1, 9),
    };
  }
  const http = options.http ?? {};
  if (!isObject(http)) throw new CacheConfigError('http', 'must be an object');
  unknownKeys(http, ['userKey'], 'http.');
  if (http.userKey !== undefined && typeof http.userKey !== 'function') {
    throw new CacheConfigError('http.userKey', 'must be a function (request) => string | undefined');
  }
  if (options.invalidation !== undefined && typeof options.invalidation !== 'boolean') {
    throw new CacheConfigError('invalidation', 'must be true or false');
  }
  return {
    client,
    profiles,
    compression,
    maxValueSize: int(
      'maxValueSize',
      options.maxValueSize,
      CACHE_DEFAULTS.maxValueSize,
      1,
      512 * 1024 * 1024,
    ),
    invalidation: options.invalidation ?? true,
    maxDeferredInvalidations: int(
      'maxDeferredInvalidations',
      options.maxDeferredInvalidations,
      CACHE_DEFAULTS.maxDeferredInvalidations,
      0,
      10_000_000,
    ),
    userKey: http.userKey,
  };
}

function resolveProfile(
  name: string,
  o: CacheProfileOptions,
  parent: ResolvedProfile | undefined,
  path: string,
): ResolvedProfile {
  const ttl = duration(`${path}ttl`, o.ttl, parent?.ttl ?? CACHE_DEFAULTS.ttl, 1);
  return {
    name,
    ttl,
    staleWhileRevalidate: duration(
      `${path}staleWhileRevalidate`,
      o.staleWhileRevalidate,
      parent?.staleWhileRevalidate ?? CACHE_DEFAULTS.staleWhileRevalidate,
      0,
    ),
    staleIfError: duration(
      `${path}staleIfError`,
      o.staleIfError,
      parent?.staleIfError ?? CACHE_DEFAULTS.staleIfError,
      0,
    ),
    earlyRefresh:
      o.earlyRefresh === undefined
        ? (parent?.earlyRefresh ?? 0)
        : resolveEarlyRefresh(`${path}earlyRefresh`, o.earlyRefresh),
    l1: o.l1 === undefined ? (parent ? parent.l1 : resolveL1(`${path}l1`, {})) : resolveL1(`${path}l1`, o.l1),
    lock: o.lock === undefined ? (parent?.lock ?? null) : resolveLock(`${path}lock`, o.lock),
  };
}

/** `earlyRefresh` option → XFetch beta (0 = off). */
export function resolveEarlyRefresh(field: string, value: boolean | CacheEarlyRefreshOptions): number {
  if (value === false) return 0;
  if (value === true) return CACHE_DEFAULTS.earlyRefreshBeta;
  if (!isObject(value)) throw new CacheConfigError(field, 'must be true, false or { beta }');
  unknownKeys(value, ['beta'], `${field}.`);
  const beta = value.beta ?? CACHE_DEFAULTS.earlyRefreshBeta;
  if (typeof beta !== 'number' || !Number.isFinite(beta) || beta <= 0 || beta > 100) {
    throw new CacheConfigError(
      `${field}.beta`,
      'must be a number above 0 and at most 100 (1 is the usual choice)',
    );
  }
  return beta;
}

/** `lock` option → lease ttl and wait, or null when off. */
export function resolveLock(field: string, value: boolean | CacheLockOptions): ResolvedProfile['lock'] {
  if (value === false) return null;
  const o = value === true ? {} : value;
  if (!isObject(o)) throw new CacheConfigError(field, 'must be true, false or { ttl, wait }');
  unknownKeys(o, ['ttl', 'wait'], `${field}.`);
  return {
    ttl: duration(`${field}.ttl`, o.ttl, CACHE_DEFAULTS.lock.ttl, 1),
    wait: duration(`${field}.wait`, o.wait, CACHE_DEFAULTS.lock.wait, 0),
  };
}

function resolveL1(field: string, value: false | CacheProfileOptions['l1']): ResolvedProfile['l1'] {
  if (value === false) return null;
  if (!isObject(value)) throw new CacheConfigError(field, 'must be false or { maxEntries, maxBytes, ttl }');
  unknownKeys(value, ['maxEntries', 'maxBytes', 'ttl'], `${field}.`);
  return {
    maxEntries: int(`${field}.maxEntries`, value.maxEntries, CACHE_DEFAULTS.l1.maxEntries, 1, 100_000_000),
    maxBytes: int(`${field}.maxBytes`, value.maxBytes, CACHE_DEFAULTS.l1.maxBytes, 1_024, 2 ** 40),
    ttl: duration(`${field}.ttl`, value.ttl, MAX_DURATION, 1),
  };
}

/** A duration option in ms, validated; `undefined` takes the fallback. */
export function duration(field: string, value: unknown, fallback: number, min: number): number {
  return int(field, value, fallback, min, MAX_DURATION, ' ms');
}

function int(field: string, value: unknown, fallback: number, min: number, max: number, unit = ''): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new CacheConfigError(
      field,
      `must be an integer from ${min} to ${max}${unit}; got ${typeof value === 'number' ? value : typeof value}`,
    );
  }
  return value;
}

function unknownKeys(o: object, allowed: readonly string[], path: string): void {
  for (const key of Object.keys(o)) {
    if (!allowed.includes(key)) {
      const hint = allowed.find((a) => a.toLowerCase() === key.toLowerCase() || closeTo(a, key));
      throw new CacheConfigError(
        `${path}${key}`,
        `is an unknown option${hint ? `; did you mean ${path}${hint}?` : `; allowed: ${allowed.join(', ')}`}`,
      );
    }
  }
}

/** True when `b` is at most two edits (insert, delete, replace) away from `a`: a likely typo. */
function closeTo(a: string, b: string): boolean {
  if (Math.abs(a.length - b.length) > 2) return false;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length] <= 2;
}

function isObject(v: unknown): v is Record<string, any> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
