import { OptionChecker, type OptionBag } from '@redwing/redis';
import { CACHE_DEFAULTS, DEFAULT_PROFILE, MAX_DURATION } from './cache.constants';
import { CacheConfigError } from './cache.errors';
import type { CacheEarlyRefreshOptions, CacheLockOptions, CacheModuleOptions } from './cache.interfaces';

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

/** How `CacheInterceptor` identifies users and recognises credentials, resolved. */
export interface ResolvedHttpConfig {
  userKey: ((request: any) => string | number | undefined | null) | undefined;
  /** Lower-case names of the request headers that carry credentials. */
  credentialHeaders: readonly string[];
}

/** The key options of one `@Cacheable` / `@CachePut` route, resolved. */
export interface ResolvedRouteKeyOptions {
  /** Query allow-list, or undefined for the whole query. */
  query: readonly string[] | undefined;
  /** Lower-case header names the entry varies on, or undefined. */
  vary: readonly string[] | undefined;
}

const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$/;

/** The module options with every default applied, validated. */
export interface ResolvedCacheConfig {
  client: string;
  profiles: Map<string, ResolvedProfile>;
  compression: { threshold: number; level: number } | null;
  maxValueSize: number;
  invalidation: boolean;
  maxDeferredInvalidations: number;
  http: ResolvedHttpConfig;
}

/** Every cache option check throws `CacheConfigError` naming the field. */
const check = new OptionChecker((field, message) => new CacheConfigError(field, message));

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
const SEE = 'the @redwing/cache README';

/**
 * Validates `CacheModule` options and applies defaults. Every message names the option (dotted path) and
 * says what is allowed.
 * @throws CacheConfigError on the first invalid option
 */
export function resolveCacheConfig(options: CacheModuleOptions = {}): ResolvedCacheConfig {
  const o = check.object(options, 'options');
  check.keys(o, MODULE_FIELDS, '', SEE);
  const client = check.string(o.client, 'client') ?? CACHE_DEFAULTS.client;
  if (!/^[A-Za-z0-9_-]{1,32}$/.test(client)) {
    throw check.fail('client', 'must name a @redwing/redis client (1–32 of A-Z a-z 0-9 _ -)');
  }
  const base = resolveProfile(DEFAULT_PROFILE, o, undefined);
  const profiles = new Map<string, ResolvedProfile>([[DEFAULT_PROFILE, base]]);
  const named = check.optionalObject(o.profiles, 'profiles', 'an object of profiles');
  for (const [name, profile] of Object.entries(named ?? {})) {
    if (!PROFILE_NAME.test(name)) {
      throw check.fail(`profiles.${name}`, 'is not a valid profile name (1–64 of A-Z a-z 0-9 _ -)');
    }
    profiles.set(name, resolveProfile(name, check.object(profile, `profiles.${name}`), base));
  }
  const http = resolveHttpConfig(o.http);
  check.bool(o.invalidation, 'invalidation');
  return {
    client,
    profiles,
    compression: resolveCompression(o.compression),
    maxValueSize:
      check.int(o.maxValueSize, 'maxValueSize', { min: 1, max: 512 * 1024 * 1024, unit: 'bytes' }) ??
      CACHE_DEFAULTS.maxValueSize,
    invalidation: (o.invalidation as boolean | undefined) ?? true,
    maxDeferredInvalidations:
      check.int(o.maxDeferredInvalidations, 'maxDeferredInvalidations', { min: 0, max: 10_000_000 }) ??
      CACHE_DEFAULTS.maxDeferredInvalidations,
    http,
  };
}

/**
 * The `http` options of `CacheModule` (what `CacheInterceptor` reads), validated.
 * @throws CacheConfigError naming the field
 */
export function resolveHttpConfig(value: unknown): ResolvedHttpConfig {
  const http = check.optionalObject(value, 'http') ?? {};
  check.keys(http, ['userKey', 'credentialHeaders'], 'http.', SEE);
  return {
    userKey: check.fn(http.userKey, 'http.userKey', 'a function (request) => string | undefined'),
    credentialHeaders: headerNames(http.credentialHeaders, 'http.credentialHeaders') ?? [
      ...CACHE_DEFAULTS.credentialHeaders,
    ],
  };
}

/**
 * The `query` and `vary` options of a route decorator, validated (`field` names the route).
 * @throws CacheConfigError naming the field
 */
export function resolveRouteKeyOptions(
  field: string,
  options: { query?: unknown; vary?: unknown },
): ResolvedRouteKeyOptions {
  const query = check.array(options.query, `${field}.query`, (v, f) =>
    required(check.string(v, f, { nonEmpty: true }), f),
  );
  return {
    query: query && [...new Set(query)].sort(),
    vary: headerNames(options.vary, `${field}.vary`),
  };
}

function headerNames(value: unknown, field: string): string[] | undefined {
  const names = check.array(value, field, (v, f) =>
    required(check.string(v, f, { pattern: HEADER_NAME, hint: 'an HTTP header name' }), f).toLowerCase(),
  );
  return names && [...new Set(names)];
}

function resolveCompression(value: unknown): ResolvedCacheConfig['compression'] {
  if (value === false) return null;
  const c = check.optionalObject(value, 'compression', 'false or { threshold, level }') ?? {};
  check.keys(c, ['threshold', 'level'], 'compression.', SEE);
  return {
    threshold:
      check.int(c.threshold, 'compression.threshold', { min: 1, max: 2 ** 31, unit: 'bytes' }) ??
      CACHE_DEFAULTS.compression.threshold,
    level: check.int(c.level, 'compression.level', { min: 1, max: 9 }) ?? CACHE_DEFAULTS.compression.level,
  };
}

function resolveProfile(name: string, o: OptionBag, parent: ResolvedProfile | undefined): ResolvedProfile {
  const path = parent ? `profiles.${name}.` : '';
  if (parent) check.keys(o, PROFILE_FIELDS, path, SEE);
  return {
    name,
    ttl: duration(`${path}ttl`, o.ttl, parent?.ttl ?? CACHE_DEFAULTS.ttl, 1),
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

/**
 * `earlyRefresh` option → XFetch beta (0 = off).
 * @throws CacheConfigError naming `field`
 */
export function resolveEarlyRefresh(field: string, value: unknown): number {
  if (value === false) return 0;
  if (value === true) return CACHE_DEFAULTS.earlyRefreshBeta;
  const o: CacheEarlyRefreshOptions = check.object(value, field, 'true, false or { beta }');
  check.keys(o, ['beta'], `${field}.`, SEE);
  const beta = o.beta ?? CACHE_DEFAULTS.earlyRefreshBeta;
  if (typeof beta !== 'number' || !Number.isFinite(beta) || beta <= 0 || beta > 100) {
    throw check.fail(`${field}.beta`, 'must be a number above 0 and at most 100 (1 is the usual choice)');
  }
  return beta;
}

/**
 * `lock` option → lease ttl and wait, or null when off.
 * @throws CacheConfigError naming `field`
 */
export function resolveLock(field: string, value: unknown): ResolvedProfile['lock'] {
  if (value === false) return null;
  const o: CacheLockOptions =
    value === true ? {} : check.object(value, field, 'true, false or { ttl, wait }');
  check.keys(o, ['ttl', 'wait'], `${field}.`, SEE);
  return {
    ttl: duration(`${field}.ttl`, o.ttl, CACHE_DEFAULTS.lock.ttl, 1),
    wait: duration(`${field}.wait`, o.wait, CACHE_DEFAULTS.lock.wait, 0),
  };
}

function resolveL1(field: string, value: unknown): ResolvedProfile['l1'] {
  if (value === false) return null;
  const o = check.object(value, field, 'false or { maxEntries, maxBytes, ttl }');
  check.keys(o, ['maxEntries', 'maxBytes', 'ttl'], `${field}.`, SEE);
  return {
    maxEntries:
      check.int(o.maxEntries, `${field}.maxEntries`, { min: 1, max: 100_000_000 }) ??
      CACHE_DEFAULTS.l1.maxEntries,
    maxBytes:
      check.int(o.maxBytes, `${field}.maxBytes`, { min: 1_024, max: 2 ** 40, unit: 'bytes' }) ??
      CACHE_DEFAULTS.l1.maxBytes,
    ttl: duration(`${field}.ttl`, o.ttl, MAX_DURATION, 1),
  };
}

/**
 * A duration option in ms from `min` to one year; `undefined` takes the fallback.
 * @throws CacheConfigError naming `field`
 */
export function duration(field: string, value: unknown, fallback: number, min: number): number {
  return check.duration(value, field, { min, max: MAX_DURATION }) ?? fallback;
}

function required(value: string | undefined, field: string): string {
  if (value === undefined) throw check.fail(field, 'must be a string; got undefined');
  return value;
}
