/** Bounds of the in-process tier (L1) of one profile. */
export interface CacheL1Options {
  /** Most entries kept; the least recently used go first. @default 10_000 */
  maxEntries?: number;
  /** Most bytes kept (serialized size of the values plus their keys). @default 32 MiB */
  maxBytes?: number;
  /**
   * Longest an entry may be served from L1, in ms, whatever its own TTL. Bounds how long an instance can
   * serve a value another instance replaced while invalidation messages were not arriving.
   * @default the entry's own lifetime
   */
  ttl?: number;
}

/** Cross-instance single-flight: a short lease key so that one instance in the fleet runs the loader. */
export interface CacheLockOptions {
  /** Lifetime of the lease key in ms; a loader slower than this lets a second instance start. @default 5_000 */
  ttl?: number;
  /** Longest a caller waits for another instance's load before loading itself, in ms. @default 5_000 */
  wait?: number;
}

/** Compression of serialized values (node:zlib deflate-raw). */
export interface CacheCompressionOptions {
  /** Values whose serialized form is at least this many bytes are compressed. @default 16_384 */
  threshold?: number;
  /** zlib level 1 (fastest) – 9 (smallest). @default 1 */
  level?: number;
}

/** Probabilistic early refresh ("XFetch"): refresh a hot entry shortly before it expires. */
export interface CacheEarlyRefreshOptions {
  /** > 1 refreshes earlier, < 1 later. @default 1 */
  beta?: number;
}

/** TTL and L1 policy of a named cache (a profile). Unset fields inherit the module's top-level values. */
export interface CacheProfileOptions {
  /** Time an entry is fresh, in ms. @default 60_000 */
  ttl?: number;
  /**
   * After `ttl`, an entry may be served for this many more ms while one background load refreshes it.
   * @default 0
   */
  staleWhileRevalidate?: number;
  /** After `ttl`, an entry may be served for this many more ms when the loader fails. @default 0 */
  staleIfError?: number;
  /** Refresh hot entries in the background before they expire. @default false */
  earlyRefresh?: boolean | CacheEarlyRefreshOptions;
  /** The in-process tier, or `false` for Redis only. @default { maxEntries: 10_000, maxBytes: 32 MiB } */
  l1?: false | CacheL1Options;
  /** Cross-instance single-flight for `getOrSet` misses (`true` = defaults). @default false */
  lock?: boolean | CacheLockOptions;
}

/** Options of `CacheModule.forRoot()`. Durations are milliseconds. */
export interface CacheModuleOptions extends CacheProfileOptions {
  /** Name of the `@redwing/redis` client the cache uses (e.g. one on an `allkeys-lru` instance). @default 'default' */
  client?: string;
  /** Named caches with their own TTL and L1 policy, e.g. `{ kanban: { ttl: 10_000 } }`. Names: `A-Z a-z 0-9 _ -`. */
  profiles?: Record<string, CacheProfileOptions>;
  /** Compress large values, or `false`. @default { threshold: 16_384, level: 1 } */
  compression?: false | CacheCompressionOptions;
  /**
   * Largest serialized value (bytes, before compression) the cache accepts; `set` of a larger one throws
   * `CacheValueTooLargeError`. Also bounds decompression. @default 1 MiB
   */
  maxValueSize?: number;
  /**
   * Invalidate other instances' L1 copies over Redis pub/sub. Turn off only for a single instance.
   * @default true
   */
  invalidation?: boolean;
  /** Invalidations kept while Redis is down, replayed when it returns. @default 10_000 */
  maxDeferredInvalidations?: number;
  /** How HTTP routes are cached by `CacheInterceptor`. */
  http?: CacheHttpOptions;
}

/** HTTP behaviour of `CacheInterceptor`. */
export interface CacheHttpOptions {
  /**
   * The identity that per-user route entries are keyed by. Return `undefined`/`null` when the request has no
   * user. @default `request.user.id ?? .sub ?? .userId` (a present user without one is never cached)
   */
  userKey?: (request: any) => string | number | undefined | null;
  /**
   * Request headers that carry credentials (case-insensitive). A request with one of them and no
   * identified user is neither served from nor stored in a shared route entry unless the route opts in
   * with `scope: 'global'` or lists the header in `vary` (RFC 9111 §3.5). Drop `'cookie'` when your
   * anonymous traffic carries cookies that do not change responses (analytics, consent).
   * @default ['authorization', 'cookie']
   */
  credentialHeaders?: readonly string[];
}

/** Which cache (profile) a call works on. */
export interface CacheReadOptions {
  /** @default 'default' */
  profile?: string;
}

/** Options of `set`, `mset` and everything that writes. */
export interface CacheSetOptions extends CacheReadOptions {
  /** Time the entry is fresh, in ms. @default the profile's `ttl` */
  ttl?: number;
  /** Tags `invalidateTags()` can delete the entry by. */
  tags?: readonly string[];
  /** @default the profile's `staleWhileRevalidate` */
  staleWhileRevalidate?: number;
  /** @default the profile's `staleIfError` */
  staleIfError?: number;
}

/** Options of `getOrSet`. */
export interface GetOrSetOptions<T = unknown> extends CacheSetOptions {
  /** Cross-instance single-flight for this call. @default the profile's `lock` */
  lock?: boolean | CacheLockOptions;
  /** @default the profile's `earlyRefresh` */
  earlyRefresh?: boolean | CacheEarlyRefreshOptions;
  /** Return true to hand the loaded value back without caching it. */
  unless?: (value: T) => boolean;
}

/** How a lookup was answered: fresh from L1 or Redis, a stale copy, or loaded. */
export type CacheOutcome = 'hit' | 'stale' | 'miss';

/** What `CacheService.resolve()` returns: the value and how it was found (for `X-Cache`). */
export interface CacheLookup<T> {
  value: T;
  outcome: CacheOutcome;
}

/** Options of `CacheService.resolve()`: those of `getOrSet`, and two that `CacheInterceptor` uses. */
export interface ResolveOptions<T = unknown> extends GetOrSetOptions<T> {
  /** Store the value as an HTTP response (a `CachedResponse`: body, status, ETag). @default false */
  response?: boolean;
  /**
   * Skip the cached copy: run the loader and store its value (a request's `Cache-Control: no-cache`).
   * Counts as a miss and a load. @default false
   */
  refresh?: boolean;
}

/** One entry of `mset`. */
export interface CacheEntryInput<T = unknown> {
  key: string;
  value: T;
  /** @default the call's or the profile's `ttl` */
  ttl?: number;
  tags?: readonly string[];
}

/** What `evict()` (and `@CacheEvict`) removes. */
export interface CacheEvictInput extends CacheReadOptions {
  keys?: readonly string[];
  tags?: readonly string[];
  /** Every entry of the profile. */
  allEntries?: boolean;
}

/** A value resolved by the key/tags/condition callbacks: a route gets `(request, context)`, a method its arguments. */
export type CacheArgsFn<R> = (...args: any[]) => R;

/** Options of `@Cacheable`. On a route the callbacks get `(request, executionContext)`; on a method, its arguments. */
export interface CacheableOptions {
  /** Time the entry is fresh, in ms. @default the profile's `ttl` */
  ttl?: number;
  /**
   * The key. @default routes: method, path, sorted query (and the user, see `scope`); methods:
   * `Class.method:<arguments>`
   */
  key?: string | CacheArgsFn<string>;
  /** Tags to invalidate the entry by, e.g. `(req) => [\`board:${req.params.id}\`]`. */
  tags?: readonly string[] | CacheArgsFn<readonly string[]>;
  /** Named cache (profile) to use. @default 'default' */
  profile?: string;
  /** Cache only when this returns true (evaluated before the call). */
  condition?: CacheArgsFn<boolean>;
  /** Do not cache a result for which this returns true: `(result, ...args)`. */
  unless?: (result: any, ...args: any[]) => boolean;
  /**
   * Routes only. `'user'` keys the entry by the authenticated user; `'global'` shares it between users and
   * also between credentialed requests (the route's response must not depend on who asks).
   * @default 'user' when `request.user` is present; else one shared entry, except for a request carrying
   * credentials (`http.credentialHeaders`), which bypasses the cache
   */
  scope?: 'user' | 'global';
  /** @default the profile's `staleWhileRevalidate` */
  staleWhileRevalidate?: number;
  /** @default the profile's `staleIfError` */
  staleIfError?: number;
  /** Cross-instance single-flight. @default the profile's `lock` */
  lock?: boolean | CacheLockOptions;
  /** Routes only: HTTP methods that are cached. @default ['GET'] */
  methods?: readonly string[];
  /**
   * Routes only: the query parameters that are part of the key (sorted; every other parameter is ignored,
   * so `?cb=<random>` cannot bust the cache). `[]` = ignore the whole query. Not used with `key`.
   * @default every parameter (a new value of any parameter is a new entry and an upstream call)
   */
  query?: readonly string[];
  /**
   * Routes only: request headers whose values are part of the key (each distinct value gets its own
   * entry, keyed by a SHA-256 digest of the values, never the values themselves). Listing a credential
   * header (`authorization`, `cookie`) opts the route in to caching credentialed requests per credential.
   */
  vary?: readonly string[];
}

/** Options of `@CacheEvict`; evaluated after the call succeeds. */
export interface CacheEvictOptions {
  /** Keys (of service-level entries) to delete. */
  keys?: readonly string[] | CacheArgsFn<readonly string[]>;
  /** Tags whose entries are deleted, in every profile. */
  tags?: readonly string[] | CacheArgsFn<readonly string[]>;
  /** Delete every entry of `profile`. */
  allEntries?: boolean;
  /** @default 'default' */
  profile?: string;
}

/** Options of `@CachePut`: always run, then store the result. */
export interface CachePutOptions {
  /**
   * @default routes: the key `@Cacheable` gives a GET of the same URL (so `PUT /boards/1` refreshes what
   * `GET /boards/1` serves); methods: `Class.method:<arguments>`
   */
  key?: string | CacheArgsFn<string>;
  tags?: readonly string[] | CacheArgsFn<readonly string[]>;
  ttl?: number;
  profile?: string;
  scope?: 'user' | 'global';
  unless?: (result: any, ...args: any[]) => boolean;
  staleWhileRevalidate?: number;
  staleIfError?: number;
  /** Routes only: the `query` allow-list of the `@Cacheable` GET route whose entry this refreshes. */
  query?: readonly string[];
  /** Routes only: the `vary` headers of the `@Cacheable` GET route whose entry this refreshes. */
  vary?: readonly string[];
}

/** Counters of one profile. */
export interface CacheProfileStats {
  /** Lookups answered fresh from L1 or L2. */
  hits: number;
  l1Hits: number;
  l2Hits: number;
  /** Lookups that found nothing usable. */
  misses: number;
  /** Stale values served (stale-while-revalidate and stale-if-error). */
  stale: number;
  /** Of `stale`: served because the loader failed. */
  staleIfError: number;
  /** Loader calls. */
  loads: number;
  loadErrors: number;
  /** Callers that joined a load already in flight instead of starting one. */
  coalesced: number;
  /** hits / (hits + misses + stale), or null before the first lookup. */
  hitRate: number | null;
  l1: CacheL1Stats | null;
}

/** Size and bounds of an L1 tier. */
export interface CacheL1Stats {
  entries: number;
  bytes: number;
  maxEntries: number;
  maxBytes: number;
  evictions: number;
  /** Entries written while Redis was unavailable; dropped when it returns. */
  localOnly: number;
}

/** Memory facts of one Redis node. */
export interface CacheRedisNodeStats {
  address: string;
  usedMemory: number;
  usedMemoryHuman: string;
  maxmemory: number;
  maxmemoryPolicy: string;
  /** usedMemory / maxmemory × 100, or null without maxmemory. */
  usedMemoryPercent: number | null;
  evictedKeys: number;
}

/** What `stats()` reports about Redis. */
export interface CacheRedisStats {
  available: true;
  nodes: CacheRedisNodeStats[];
  usedMemory: number;
  maxmemory: number;
  maxmemoryPolicy: string;
  usedMemoryPercent: number | null;
  evictedKeys: number;
  /** Keys under `<prefix>:cache:` counted with SCAN (never KEYS); refreshed at most every 5 s. */
  keys: { total: number; entries: number; complete: boolean; countedAt: string };
}

/** One piece of advice in `stats().recommendations`. */
export interface CacheRecommendation {
  code: string;
  severity: 'info' | 'warning' | 'critical';
  message: string;
}

/** Everything `CacheService.stats()` and `GET /cache/stats` report. */
export interface CacheStats {
  hits: number;
  l1Hits: number;
  l2Hits: number;
  misses: number;
  stale: number;
  loads: number;
  loadErrors: number;
  coalesced: number;
  hitRate: number | null;
  /** Loader durations over the last 512 loads. */
  loadTime: {
    count: number;
    meanMs: number | null;
    p50Ms: number | null;
    p99Ms: number | null;
    maxMs: number | null;
  };
  l1: {
    entries: number;
    bytes: number;
    maxEntries: number;
    maxBytes: number;
    evictions: number;
    localOnly: number;
  };
  l2: {
    /** Whether a command sent now would reach Redis. */
    available: boolean;
    /** Reads and writes that failed for an availability reason and were served around. */
    errors: number;
    /** Writes skipped because Redis refused them for memory (OOM); see the memory guard. */
    writesSkipped: number;
    /** Until when (ISO time) writes to Redis are paused by the memory guard, or null. */
    memoryGuardUntil: string | null;
  };
  invalidation: {
    enabled: boolean;
    /** True while invalidation messages are known to arrive (subscriber connected, sequence checked). */
    synced: boolean;
    published: number;
    received: number;
    /** Times L1 was emptied because messages may have been missed (reconnect, gap in sequence). */
    flushes: number;
    /** Invalidations waiting for Redis to return. */
    deferred: number;
    replayed: number;
    /** Deferred invalidations dropped because the queue was full. */
    dropped: number;
  };
  lock: { acquired: number; waits: number; waitHits: number; timeouts: number; lost: number };
  profiles: Record<string, CacheProfileStats>;
  redis: CacheRedisStats | { available: false; error: string } | null;
  recommendations: CacheRecommendation[];
}
