import { randomBytes } from 'node:crypto';
import {
  Inject,
  Injectable,
  Logger,
  type OnModuleDestroy,
  type OnModuleInit,
  type Type,
} from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { RedisClientManager, type ManagedRedisClient, type RedisConnection } from '@redwing/redis';
import { CacheInspector, clientsSharing, recommend } from './cache-inspector';
import { assertKey, CacheKeys } from './cache-keys';
import { CacheMetrics, type MetricsRegistry, type ProfileCounters } from './cache-metrics';
import { CacheCodec, type CachedResponse, type DecodedEntry, type EntryMeta } from './cache-serializer';
import {
  duration,
  resolveCacheConfig,
  resolveEarlyRefresh,
  resolveLock,
  type ResolvedCacheConfig,
  type ResolvedProfile,
} from './cache.config';
import { DEFAULT_PROFILE } from './cache.constants';
import type {
  CacheEntryInput,
  CacheEvictInput,
  CacheLockOptions,
  CacheModuleOptions,
  CacheReadOptions,
  CacheSetOptions,
  CacheStats,
  GetOrSetOptions,
} from './cache.interfaces';
import { CACHE_MODULE_OPTIONS } from './cache.module-definition';
import { DeferredInvalidations, type InvalidationOp } from './deferred-invalidations';
import { InvalidationBus, type InvalidationMessage } from './invalidation-bus';
import { L1Store, type L1Entry } from './l1-store';
import { RedisTier } from './redis-tier';

/** Reply errors that mean "Redis cannot serve right now" (as @redwing/redis classifies them). */
const UNAVAILABLE_REPLY = /^(LOADING|CLUSTERDOWN|MASTERDOWN|READONLY|TRYAGAIN|BUSY)\b/;
/** How long writes to Redis pause after an OOM refusal, ms. */
const MEMORY_GUARD_PAUSE = 5_000;
const LOAD_SAMPLES = 512;

/** One named cache at run time. */
export interface ProfileRuntime {
  readonly config: ResolvedProfile;
  readonly l1: L1Store | null;
  /** `<prefix>:cache:<profile>:` */
  readonly prefix: string;
  readonly counters: ProfileCounters;
}

/** How a lookup was answered. */
export type CacheOutcome = 'hit' | 'stale' | 'miss';

/** @internal Result of {@link CacheService.resolve}. */
export interface Resolved<T> {
  value: T;
  outcome: CacheOutcome;
}

/** @internal Options of {@link CacheService.resolve}. */
export interface ResolveOptions<T> extends GetOrSetOptions<T> {
  /** Store the value as an HTTP response (`CachedResponse`), not as a serialized value. */
  response?: boolean;
}

type FlightMode = 'get' | 'refresh' | 'reload';

interface Flight {
  promise: Promise<Resolved<unknown>>;
  profile: string;
  key: string;
  tags: readonly string[] | undefined;
  /** An invalidation of this key arrived while loading: hand the value back but do not store it. */
  invalidated: boolean;
  /** A background refresh to start once this flight is over (stale or early-refresh hit from L2). */
  after?: FlightMode;
}

type LeaseResult =
  | { kind: 'lease'; token: string; leaseKey: string }
  | { kind: 'value'; entry: DecodedEntry }
  | { kind: 'busy' }
  | { kind: 'none' };

/**
 * Two-tier cache on `@redwing/redis`: a bounded in-process tier (L1) in front of Redis (L2), per named
 * profile, with cross-instance L1 invalidation, stampede protection and a degradation path for when Redis is
 * down (L1 keeps serving, Redis reads are misses, writes go to L1 only and are dropped — never written back —
 * when Redis returns).
 *
 * Values are returned as stored in L1, not copied: treat them as immutable.
 * @example
 * const board = await cache.getOrSet(`board:${id}`, () => upstream.board(id), { ttl: 30_000, tags: [`board:${id}`] });
 * await cache.invalidateTags([`board:${id}`]);
 */
@Injectable()
export class CacheService implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger('CacheService');
  private readonly config: ResolvedCacheConfig;
  private readonly client: ManagedRedisClient;
  private readonly command: RedisConnection;
  private readonly redis: RedisTier;
  private readonly keys: CacheKeys;
  private readonly codec: CacheCodec;
  private readonly runtimes = new Map<string, ProfileRuntime>();
  private readonly defaultRuntime: ProfileRuntime;
  private readonly flights = new Map<string, Flight>();
  private readonly waiters = new Map<string, Set<() => void>>();
  private readonly deferred: DeferredInvalidations;
  private readonly bus: InvalidationBus | null;
  private readonly inspector: CacheInspector;
  private readonly instanceId = randomBytes(6).toString('base64url');
  private leaseSeq = 0;
  private memoryGuardUntil = 0;
  private closed = false;
  private metrics: CacheMetrics | null = null;
  private readonly unlisten: Array<() => void> = [];
  private readonly loadSamples = new Float64Array(LOAD_SAMPLES);
  private loadCount = 0;
  private readonly warned = new Set<string>();
  private readonly background = new Set<Promise<unknown>>();
  private readonly counters = {
    l2Errors: 0,
    writesSkipped: 0,
    lock: { acquired: 0, waits: 0, waitHits: 0, timeouts: 0, lost: 0 },
  };

  constructor(
    @Inject(CACHE_MODULE_OPTIONS) options: CacheModuleOptions,
    private readonly manager: RedisClientManager,
    private readonly moduleRef: ModuleRef,
  ) {
    this.config = resolveCacheConfig(options ?? {});
    this.client = manager.get(this.config.client);
    this.command = this.client.command;
    this.keys = new CacheKeys(manager.keyPrefix);
    this.redis = new RedisTier(this.client, this.keys);
    this.deferred = new DeferredInvalidations(this.config.maxDeferredInvalidations, () =>
      this.warnOnce(
        'deferred-full',
        `the queue of invalidations waiting for Redis is full (maxDeferredInvalidations ` +
          `${this.config.maxDeferredInvalidations}); further ones are dropped and those entries may be served until their TTL`,
      ),
    );
    this.codec = new CacheCodec({
      compression: this.config.compression,
      maxValueSize: this.config.maxValueSize,
    });
    for (const [name, profile] of this.config.profiles) {
      this.runtimes.set(name, {
        config: profile,
        l1: profile.l1 ? new L1Store(profile.l1.maxEntries, profile.l1.maxBytes, profile.l1.ttl) : null,
        prefix: this.keys.profile(name),
        counters: {
          l1Hits: 0,
          l2Hits: 0,
          misses: 0,
          stale: 0,
          staleIfError: 0,
          loads: 0,
          loadErrors: 0,
          coalesced: 0,
        },
      });
    }
    this.defaultRuntime = this.runtimes.get(DEFAULT_PROFILE)!;
    this.bus = this.config.invalidation
      ? new InvalidationBus(
          this.client,
          this.keys,
          this.instanceId,
          { apply: (m, own) => this.applyMessage(m, own), flush: (reason) => this.flushL1(reason) },
          this.logger,
        )
      : null;
    this.inspector = new CacheInspector(this.client, this.keys);
  }

  onModuleInit(): void {
    this.bus?.start();
    const name = this.client.name;
    this.unlisten.push(
      this.manager.events.on('state', (e) => {
        if (e.client === name && e.current === 'ready') this.onRecovered();
      }),
      this.manager.events.on('breaker', (e) => {
        if (e.client === name && (e.current === 'closed' || e.current === 'forced-closed'))
          this.onRecovered();
      }),
    );
    const registry = this.findMetrics();
    if (registry) {
      this.metrics = new CacheMetrics(registry, {
        profiles: () =>
          [...this.runtimes.values()].map((p) => ({
            name: p.config.name,
            counters: p.counters,
            l1: p.l1?.stats() ?? null,
          })),
        invalidation: () => this.bus?.counters ?? { published: 0, received: 0, flushes: 0 },
        l2Errors: () => this.counters.l2Errors,
      });
    }
  }

  async onModuleDestroy(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const off of this.unlisten.splice(0)) off();
    for (const set of this.waiters.values()) for (const wake of [...set]) wake();
    // Background refreshes finish (their writes are skipped now); a hung loader does not hold shutdown.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.background]),
      new Promise((r) => (timer = setTimeout(r, 2 * this.client.config.commandTimeout))),
    ]);
    clearTimeout(timer);
    await this.bus?.stop();
    this.metrics?.sync();
    this.metrics?.stop();
  }

  // ------------------------------------------------------------------------------------------ reads

  /**
   * The fresh value of `key`, from L1 or Redis; `undefined` when absent, stale, or Redis is unavailable.
   * A cached `undefined` also reads as `undefined`; use `has()` to tell them apart.
   */
  async get<T = unknown>(key: string, options?: CacheReadOptions): Promise<T | undefined> {
    if (typeof key !== 'string' || key.length === 0) assertKey(key);
    const p = options?.profile === undefined ? this.defaultRuntime : this.runtime(options.profile);
    const now = Date.now();
    if (p.l1 !== null && this.l1Readable()) {
      const e = p.l1.get(key, now);
      if (e !== undefined && now < e.freshUntil) {
        p.counters.l1Hits++;
        return e.value as T;
      }
    }
    // The hot path of an L2 hit: one GET, no intermediate promises.
    const fullKey = p.prefix + key;
    let buf: Buffer | null;
    try {
      buf = await this.command.getBuffer(fullKey);
    } catch (err) {
      this.onRedisError(err, 'get');
      p.counters.misses++;
      return undefined;
    }
    if (buf !== null) {
      const e = this.decodeOrDrop(fullKey, buf);
      if (e !== undefined && now < e.freshUntil) {
        if (p.l1 !== null) this.fillL1(p, key, e, now);
        p.counters.l2Hits++;
        return e.value as T;
      }
    }
    p.counters.misses++;
    return undefined;
  }

  /** Whether a fresh entry exists for `key` (a cached `undefined` counts). False while Redis is unavailable and L1 has none. */
  async has(key: string, options?: CacheReadOptions): Promise<boolean> {
    return (await this.ttl(key, options)) !== undefined;
  }

  /**
   * Remaining fresh lifetime of `key` in ms, or `undefined` when there is no fresh entry (absent, stale,
   * or Redis unavailable and not in L1). Reads only the entry header from Redis.
   */
  async ttl(key: string, options?: CacheReadOptions): Promise<number | undefined> {
    assertKey(key);
    const p = this.runtime(options?.profile);
    const now = Date.now();
    if (p.l1 !== null && this.l1Readable()) {
      const e = p.l1.get(key, now);
      if (e !== undefined && now < e.freshUntil) return e.freshUntil - now;
    }
    let head: Buffer | null;
    try {
      head = await this.redis.readHead(p.prefix + key, 20);
    } catch (err) {
      this.onRedisError(err, 'ttl');
      return undefined;
    }
    const life = head ? CacheCodec.decodeLifetime(head) : undefined;
    const later = Date.now();
    return life && later < life.freshUntil ? life.freshUntil - later : undefined;
  }

  /** Fresh values of several keys, in order (`undefined` where absent). One MGET per hash slot on Cluster. */
  async mget<T = unknown>(
    keys: readonly string[],
    options?: CacheReadOptions,
  ): Promise<Array<T | undefined>> {
    keys.forEach((k) => assertKey(k));
    const p = this.runtime(options?.profile);
    const out = new Array<T | undefined>(keys.length);
    const missing: number[] = [];
    const now = Date.now();
    const l1 = p.l1 !== null && this.l1Readable() ? p.l1 : null;
    keys.forEach((key, i) => {
      const e = l1?.get(key, now);
      if (e !== undefined && now < e.freshUntil) {
        p.counters.l1Hits++;
        out[i] = e.value as T;
      } else missing.push(i);
    });
    if (missing.length === 0) return out;
    const fullKeys = missing.map((i) => p.prefix + keys[i]);
    let found = new Map<string, Buffer | null>();
    try {
      found = await this.redis.readMany(fullKeys);
    } catch (err) {
      this.onRedisError(err, 'mget');
    }
    const later = Date.now();
    missing.forEach((i, j) => {
      const buf = found.get(fullKeys[j]);
      const e = buf ? this.decodeOrDrop(fullKeys[j], buf) : undefined;
      if (e !== undefined && later < e.freshUntil) {
        this.fillL1(p, keys[i], e, later);
        p.counters.l2Hits++;
        out[i] = e.value as T;
      } else p.counters.misses++;
    });
    return out;
  }

  // ----------------------------------------------------------------------------------------- writes

  /**
   * Stores `value` under `key` for `ttl` ms (in Redis and L1) and invalidates other instances' L1 copies.
   * While Redis is unavailable the value goes to L1 only and is dropped when Redis returns (never written
   * back, so it cannot overwrite a newer value).
   * @throws CacheValueTooLargeError when the serialized value exceeds `maxValueSize`
   * @throws CacheSerializationError when the value cannot be serialized (e.g. circular)
   */
  async set<T>(key: string, value: T, options?: CacheSetOptions): Promise<void> {
    assertKey(key);
    const p = this.runtime(options?.profile);
    this.invalidateFlights((f) => f.profile === p.config.name && f.key === key);
    await this.write(p, key, value, options ?? {}, 0, false, true);
  }

  /**
   * Stores several entries (each may have its own `ttl` and `tags`); one invalidation message for all.
   * Every value is serialized and checked before anything is written.
   * @throws CacheValueTooLargeError / CacheSerializationError for the first bad value (nothing written)
   */
  async mset(entries: ReadonlyArray<CacheEntryInput>, options?: CacheSetOptions): Promise<void> {
    const p = this.runtime(options?.profile);
    const prepared = entries.map((e) => {
      assertKey(e.key);
      return this.prepare(
        p,
        e.key,
        e.value,
        { ...options, ttl: e.ttl ?? options?.ttl, tags: e.tags ?? options?.tags },
        0,
        false,
      );
    });
    const keys = new Set(entries.map((e) => e.key));
    this.invalidateFlights((f) => f.profile === p.config.name && keys.has(f.key));
    await Promise.all(prepared.map((w) => this.commit(p, w, true)));
  }

  /**
   * Deletes keys from L1 and Redis and from other instances' L1. While Redis is down the deletion is kept
   * and replayed when it returns (deleting twice is harmless); it then resolves to 0.
   * @returns how many entries Redis deleted
   */
  async del(keys: string | readonly string[], options?: CacheReadOptions): Promise<number> {
    const list = typeof keys === 'string' ? [keys] : [...keys];
    list.forEach((k) => assertKey(k));
    const p = this.runtime(options?.profile);
    for (const key of list) p.l1?.delete(key);
    const set = new Set(list);
    this.invalidateFlights((f) => f.profile === p.config.name && set.has(f.key));
    return this.runOrDefer({ kind: 'keys', profile: p.config.name, keys: list });
  }

  /**
   * Deletes every entry (of every profile) carrying one of `tags`, in Redis and in every instance's L1.
   * Tags are matched exactly, never as patterns. Deferred like `del` while Redis is down.
   * @returns how many entries Redis deleted
   */
  async invalidateTags(tags: readonly string[]): Promise<number> {
    const list = [...new Set(tags)];
    list.forEach((t) => assertKey(t, 'tag'));
    for (const p of this.runtimes.values()) p.l1?.deleteTags(list);
    this.invalidateFlights((f) => f.tags !== undefined && f.tags.some((t) => list.includes(t)));
    if (list.length === 0) return 0;
    return this.runOrDefer({ kind: 'tags', tags: list });
  }

  /**
   * Deletes the entries of a profile whose key starts with `prefix` (`''` = the whole profile), with SCAN +
   * UNLINK on every master, never KEYS. The prefix is a literal: `*`, `?`, `[` and `\` in it match only
   * themselves, and nothing outside `<prefix>:cache:<profile>:` can match. Deferred like `del` while Redis
   * is down.
   * @returns how many entries Redis deleted
   */
  async deleteByPrefix(prefix: string, options?: CacheReadOptions): Promise<number> {
    if (typeof prefix !== 'string') throw new TypeError('deleteByPrefix: prefix must be a string');
    const p = this.runtime(options?.profile);
    p.l1?.deletePrefix(prefix);
    this.invalidateFlights((f) => f.profile === p.config.name && f.key.startsWith(prefix));
    return this.runOrDefer({ kind: 'prefix', profile: p.config.name, prefix });
  }

  /** Deletes every entry of a profile (`deleteByPrefix('')`). */
  clear(options?: CacheReadOptions): Promise<number> {
    return this.deleteByPrefix('', options);
  }

  /** What `@CacheEvict` runs: keys, tags and/or the whole profile. Resolves to the entries deleted. */
  async evict(input: CacheEvictInput): Promise<number> {
    const ops: Array<Promise<number>> = [];
    if (input.allEntries) ops.push(this.clear({ profile: input.profile }));
    else if (input.keys?.length) ops.push(this.del(input.keys, { profile: input.profile }));
    if (input.tags?.length) ops.push(this.invalidateTags(input.tags));
    return (await Promise.all(ops)).reduce((a, b) => a + b, 0);
  }

  // ----------------------------------------------------------------------------------- get-or-set

  /**
   * The value of `key`, loading it with `loader` on a miss. Concurrent callers in this process share one
   * load (always); with `lock` they share it across instances too. Serves stale values within
   * `staleWhileRevalidate` (refreshing in the background) and, when the loader fails, within
   * `staleIfError`. A loader error is rethrown when no stale value may be served. Redis failures never fail
   * the call: it loads and keeps the value in L1.
   */
  async getOrSet<T>(key: string, loader: () => T | Promise<T>, options?: GetOrSetOptions<T>): Promise<T> {
    return (await this.resolve(key, loader, options ?? {})).value;
  }

  /** @internal `getOrSet` that also says how the value was found (for `X-Cache`). */
  async resolve<T>(
    key: string,
    loader: () => T | Promise<T>,
    options: ResolveOptions<T>,
  ): Promise<Resolved<T>> {
    assertKey(key);
    const p = this.runtime(options.profile);
    const now = Date.now();
    let stale: { value: unknown; freshUntil: number; staleUntil: number } | undefined;
    if (p.l1 !== null && this.l1Readable()) {
      const e = p.l1.get(key, now);
      if (e !== undefined) {
        const served = this.serve<T>(p, key, e, now, 'l1', loader, options, undefined);
        if (served) return served;
        stale = e;
      }
    }
    const fullKey = p.prefix + key;
    const existing = this.flights.get(fullKey);
    if (existing) {
      p.counters.coalesced++;
      return existing.promise as Promise<Resolved<T>>;
    }
    return this.startFlight(p, key, fullKey, loader, options, 'get', stale).promise as Promise<Resolved<T>>;
  }

  /** @internal Stores an HTTP response as a route entry (`@CachePut`, `Cache-Control: no-cache` revalidation). */
  async storeResponse(
    p: ProfileRuntime,
    key: string,
    response: CachedResponse,
    options: CacheSetOptions,
  ): Promise<void> {
    this.invalidateFlights((f) => f.profile === p.config.name && f.key === key);
    await this.write(p, key, response, options, 0, true, false);
  }

  /** @internal The runtime of a profile (for the interceptor). */
  runtime(profile: string | undefined): ProfileRuntime {
    if (profile === undefined) return this.defaultRuntime;
    const p = this.runtimes.get(profile);
    if (!p) {
      throw new Error(
        `Unknown cache profile "${profile}". Configured: ${[...this.runtimes.keys()].join(', ')}. ` +
          `Add it under CacheModule.forRoot({ profiles: { ${profile}: { ttl } } }).`,
      );
    }
    return p;
  }

  /** @internal A fresh-or-stale L1 entry, if L1 may be read now (the interceptor's synchronous fast path). */
  peek(p: ProfileRuntime, key: string, now: number): L1Entry | undefined {
    return p.l1 !== null && this.l1Readable() ? p.l1.get(key, now) : undefined;
  }

  /** @internal HTTP user identity resolver from the module options. */
  get userKey(): ResolvedCacheConfig['userKey'] {
    return this.config.userKey;
  }

  // ---------------------------------------------------------------------------------------- stats

  /**
   * Counters, L1 size, invalidation and lock state, and (unless `redis: false`) Redis `INFO memory`, the
   * eviction policy and the number of keys in the namespace (SCAN, never KEYS), with recommendations.
   */
  async stats(options: { redis?: boolean } = {}): Promise<CacheStats> {
    const profiles: CacheStats['profiles'] = {};
    const total = { l1Hits: 0, l2Hits: 0, misses: 0, stale: 0, loads: 0, loadErrors: 0, coalesced: 0 };
    const l1 = { entries: 0, bytes: 0, maxEntries: 0, maxBytes: 0, evictions: 0, localOnly: 0 };
    for (const p of this.runtimes.values()) {
      const c = p.counters;
      const hits = c.l1Hits + c.l2Hits;
      const s = p.l1?.stats() ?? null;
      profiles[p.config.name] = { hits, ...c, hitRate: rate(hits, c.misses + c.stale), l1: s };
      for (const k of Object.keys(total) as Array<keyof typeof total>) total[k] += c[k];
      if (s) for (const k of Object.keys(l1) as Array<keyof typeof l1>) l1[k] += s[k];
    }
    const hits = total.l1Hits + total.l2Hits;
    const bus = this.bus?.counters;
    const base: Omit<CacheStats, 'redis' | 'recommendations'> = {
      hits,
      ...total,
      hitRate: rate(hits, total.misses + total.stale),
      loadTime: this.loadTime(),
      l1,
      l2: {
        available: this.client.isAvailable(),
        errors: this.counters.l2Errors,
        writesSkipped: this.counters.writesSkipped,
        memoryGuardUntil:
          Date.now() < this.memoryGuardUntil ? new Date(this.memoryGuardUntil).toISOString() : null,
      },
      invalidation: {
        enabled: this.bus !== null,
        synced: this.bus?.isSynced ?? false,
        published: bus?.published ?? 0,
        received: bus?.received ?? 0,
        flushes: bus?.flushes ?? 0,
        deferred: this.deferred.size,
        replayed: this.deferred.counters.replayed,
        dropped: this.deferred.counters.dropped,
      },
      lock: { ...this.counters.lock },
      profiles,
    };
    let redis: CacheStats['redis'] = null;
    if (options.redis !== false) {
      try {
        redis = await this.inspector.inspect();
      } catch (err) {
        redis = { available: false, error: err instanceof Error ? err.message : String(err) };
      }
    }
    const sharedWith = clientsSharing(this.manager, this.client);
    return { ...base, redis, recommendations: recommend({ stats: base, redis, sharedWith }) };
  }

  // ------------------------------------------------------------------------------------- internals

  /** L1 may answer unless invalidations are not arriving while Redis itself is reachable. */
  private l1Readable(): boolean {
    return this.bus === null || this.bus.isSynced || !this.client.isAvailable();
  }

  /** Serve a cached copy if it is fresh, or stale within the window (starting a refresh); else undefined. */
  private serve<T>(
    p: ProfileRuntime,
    key: string,
    e: { value: unknown; freshUntil: number; staleUntil: number; delta: number },
    now: number,
    tier: 'l1' | 'l2',
    loader: () => T | Promise<T>,
    options: ResolveOptions<T>,
    flight: Flight | undefined,
  ): Resolved<T> | undefined {
    if (now < e.freshUntil) {
      if (tier === 'l1') p.counters.l1Hits++;
      else p.counters.l2Hits++;
      const beta =
        options.earlyRefresh === undefined
          ? p.config.earlyRefresh
          : resolveEarlyRefresh('earlyRefresh', options.earlyRefresh);
      // XFetch: refresh early with a probability that grows as expiry nears, scaled by the load time.
      if (beta > 0 && e.delta > 0 && now - e.delta * beta * Math.log(Math.random()) >= e.freshUntil) {
        if (flight) flight.after = 'reload';
        else this.refreshInBackground(p, key, loader, options, 'reload');
      }
      return { value: e.value as T, outcome: 'hit' };
    }
    const swr = options.staleWhileRevalidate ?? p.config.staleWhileRevalidate;
    if (now < e.freshUntil + swr && now < e.staleUntil) {
      p.counters.stale++;
      if (flight) flight.after = 'refresh';
      else this.refreshInBackground(p, key, loader, options, 'refresh');
      return { value: e.value as T, outcome: 'stale' };
    }
    return undefined;
  }

  private refreshInBackground<T>(
    p: ProfileRuntime,
    key: string,
    loader: () => T | Promise<T>,
    options: ResolveOptions<T>,
    mode: FlightMode,
  ): void {
    const fullKey = p.prefix + key;
    if (this.closed || this.flights.has(fullKey)) return;
    const f = this.startFlight(p, key, fullKey, loader, options, mode, undefined);
    const tracked = f.promise.catch((err: unknown) => {
      this.logger.debug(
        `background refresh of "${key}" failed: ${err instanceof Error ? err.message : String(err)}`,
      );
    });
    this.background.add(tracked);
    void tracked.finally(() => this.background.delete(tracked));
  }

  private startFlight<T>(
    p: ProfileRuntime,
    key: string,
    fullKey: string,
    loader: () => T | Promise<T>,
    options: ResolveOptions<T>,
    mode: FlightMode,
    stale: { value: unknown; freshUntil: number; staleUntil: number } | undefined,
  ): Flight {
    const flight: Flight = {
      promise: undefined as unknown as Promise<Resolved<unknown>>,
      profile: p.config.name,
      key,
      tags: options.tags,
      invalidated: false,
    };
    this.flights.set(fullKey, flight);
    flight.promise = this.fly(p, key, fullKey, loader, options, mode, stale, flight).finally(() => {
      if (this.flights.get(fullKey) === flight) this.flights.delete(fullKey);
      if (flight.after) this.refreshInBackground(p, key, loader, options, flight.after);
    });
    return flight;
  }

  /** One load of a key: L2, then (optionally) the cross-instance lease, then the loader, then the write. */
  private async fly<T>(
    p: ProfileRuntime,
    key: string,
    fullKey: string,
    loader: () => T | Promise<T>,
    options: ResolveOptions<T>,
    mode: FlightMode,
    stale: { value: unknown; freshUntil: number; staleUntil: number } | undefined,
    flight: Flight,
  ): Promise<Resolved<T>> {
    // Once Redis failed this flight for availability, it is not asked again: one dead wait per call, at most.
    let redisDown = false;
    if (mode !== 'reload') {
      const read = await this.readL2Checked(fullKey);
      redisDown = read.failed;
      const found = read.entry;
      if (found !== undefined) {
        const now = Date.now();
        this.fillL1(p, key, found, now);
        if (mode === 'get') {
          const served = this.serve<T>(p, key, found, now, 'l2', loader, options, flight);
          if (served) return served;
        } else if (now < found.freshUntil) {
          return { value: found.value as T, outcome: 'hit' };
        }
        if (now < found.staleUntil) stale = found;
      }
    }
    if (mode === 'get') p.counters.misses++;

    const lock =
      options.lock === undefined
        ? p.config.lock
        : resolveLock('lock', options.lock as boolean | CacheLockOptions);
    let lease: { token: string; leaseKey: string } | undefined;
    if (lock && !redisDown && this.client.isAvailable()) {
      const r = await this.leaseOrWait(p, key, fullKey, lock, mode);
      if (r.kind === 'value') {
        this.fillL1(p, key, r.entry, Date.now());
        return { value: r.entry.value as T, outcome: 'hit' };
      }
      // Another instance is already refreshing: a background refresh has nothing left to do.
      if (r.kind === 'busy') return { value: stale?.value as T, outcome: 'stale' };
      if (r.kind === 'lease') lease = r;
    }

    let failed = true;
    try {
      const started = performance.now();
      let value: T;
      p.counters.loads++;
      try {
        value = await loader();
      } catch (err) {
        p.counters.loadErrors++;
        this.recordLoad(p, performance.now() - started);
        const now = Date.now();
        const sie = options.staleIfError ?? p.config.staleIfError;
        if (stale && now < stale.freshUntil + sie && now < stale.staleUntil) {
          p.counters.stale++;
          p.counters.staleIfError++;
          return { value: stale.value as T, outcome: 'stale' };
        }
        throw err;
      }
      const delta = performance.now() - started;
      this.recordLoad(p, delta);
      failed = false;
      if (!flight.invalidated && !this.closed && !options.unless?.(value)) {
        try {
          await this.write(p, key, value, options, delta, options.response === true, false, redisDown);
        } catch (err) {
          this.warnOnce(
            `write:${err instanceof Error ? err.name : 'error'}`,
            `value for "${key}" was not cached: ${err instanceof Error ? err.message : String(err)}`,
          );
        }
      }
      return { value, outcome: 'miss' };
    } finally {
      if (lease) await this.releaseLease(p, key, lease, failed);
    }
  }

  /**
   * Cross-instance single-flight: take the lease (`SET NX PX`) and load, or wait — woken by the winner's
   * invalidation message, polling Redis as a fallback — until the value appears, the lease frees up (then
   * try to take it), or `wait` runs out (then load without it).
   */
  private async leaseOrWait(
    p: ProfileRuntime,
    key: string,
    fullKey: string,
    lock: { ttl: number; wait: number },
    mode: FlightMode,
  ): Promise<LeaseResult> {
    const leaseKey = this.keys.lease(p.config.name, key);
    const token = `${this.instanceId}:${++this.leaseSeq}`;
    const deadline = Date.now() + lock.wait;
    let delay = 10;
    for (let round = 0; round < 10_000; round++) {
      let taken: boolean;
      try {
        taken = await this.redis.acquireLease(leaseKey, token, lock.ttl);
      } catch (err) {
        this.onRedisError(err, 'lease');
        return { kind: 'none' };
      }
      if (taken) {
        this.counters.lock.acquired++;
        if (mode === 'get') {
          // Another instance may have stored the value and released the lease since our read.
          const e = await this.readL2(fullKey);
          if (e !== undefined && Date.now() < e.freshUntil) {
            await this.releaseLease(p, key, { token, leaseKey }, false);
            this.counters.lock.waitHits++;
            return { kind: 'value', entry: e };
          }
        }
        return { kind: 'lease', token, leaseKey };
      }
      if (mode !== 'get') return { kind: 'busy' };
      if (round === 0) this.counters.lock.waits++;
      const remaining = deadline - Date.now();
      if (remaining <= 0 || this.closed) {
        this.counters.lock.timeouts++;
        return { kind: 'none' };
      }
      await this.waitForWake(fullKey, Math.min(delay, remaining));
      delay = Math.min(delay * 2, 200);
      const e = await this.readL2(fullKey);
      if (e !== undefined && Date.now() < e.freshUntil) {
        this.counters.lock.waitHits++;
        return { kind: 'value', entry: e };
      }
      if (!this.client.isAvailable()) return { kind: 'none' };
    }
    return { kind: 'none' };
  }

  private async releaseLease(
    p: ProfileRuntime,
    key: string,
    lease: { token: string; leaseKey: string },
    wakeWaiters: boolean,
  ): Promise<void> {
    const body = wakeWaiters ? `0|${JSON.stringify({ o: this.instanceId, l: [[p.config.name, key]] })}` : '';
    try {
      const r = await this.redis.releaseLease(
        lease.leaseKey,
        lease.token,
        wakeWaiters && this.bus ? this.keys.channel : '',
        body,
      );
      if (r === -1) this.counters.lock.lost++;
    } catch (err) {
      this.onRedisError(err, 'lease');
    }
  }

  private waitForWake(fullKey: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      let set = this.waiters.get(fullKey);
      if (!set) this.waiters.set(fullKey, (set = new Set()));
      const waiters = set;
      const done = () => {
        clearTimeout(timer);
        waiters.delete(done);
        if (waiters.size === 0 && this.waiters.get(fullKey) === waiters) this.waiters.delete(fullKey);
        resolve();
      };
      const timer = setTimeout(done, ms);
      waiters.add(done);
    });
  }

  private wake(profile: string, key: string): void {
    const set = this.waiters.get(this.keys.profile(profile) + key);
    if (set) for (const wake of [...set]) wake();
  }

  /** Serializes, stores in Redis (unless the memory guard pauses writes) and L1, and publishes the key. */
  private async write(
    p: ProfileRuntime,
    key: string,
    value: unknown,
    options: CacheSetOptions,
    delta: number,
    response: boolean,
    strict: boolean,
    redisDown = false,
  ): Promise<void> {
    await this.commit(p, this.prepare(p, key, value, options, delta, response), strict, redisDown);
  }

  private prepare(
    p: ProfileRuntime,
    key: string,
    value: unknown,
    options: CacheSetOptions,
    delta: number,
    response: boolean,
  ): { key: string; fullKey: string; value: unknown; buf: Buffer; meta: EntryMeta } {
    const now = Date.now();
    const ttl = duration('ttl', options.ttl, p.config.ttl, 1);
    const swr = duration(
      'staleWhileRevalidate',
      options.staleWhileRevalidate,
      p.config.staleWhileRevalidate,
      0,
    );
    const sie = duration('staleIfError', options.staleIfError, p.config.staleIfError, 0);
    const tags = options.tags && options.tags.length > 0 ? [...new Set(options.tags)] : undefined;
    tags?.forEach((t) => assertKey(t, 'tag'));
    const freshUntil = now + ttl;
    const meta: EntryMeta = { freshUntil, staleUntil: freshUntil + Math.max(swr, sie), delta, tags };
    const fullKey = p.prefix + key;
    const buf = response
      ? this.codec.encodeResponse(fullKey, value as CachedResponse, meta)
      : this.codec.encodeValue(fullKey, value, meta);
    return { key, fullKey, value, buf, meta };
  }

  private async commit(
    p: ProfileRuntime,
    w: { key: string; fullKey: string; value: unknown; buf: Buffer; meta: EntryMeta },
    strict: boolean,
    redisDown = false,
  ): Promise<void> {
    let stored = false;
    let localOnly = false;
    const start = Date.now();
    const px = Math.max(1, Math.round(w.meta.staleUntil - start));
    if (redisDown) {
      localOnly = true;
    } else if (start < this.memoryGuardUntil) {
      this.counters.writesSkipped++;
    } else {
      try {
        await this.redis.write(w.fullKey, w.buf, px, w.meta.tags, (tagKey) =>
          this.warnOnce(
            `tag:${tagKey}`,
            `${tagKey} is not a set; something else writes into the cache namespace`,
          ),
        );
        stored = true;
      } catch (err) {
        const kind = classify(err);
        if (kind === 'unavailable') {
          localOnly = true;
          this.counters.l2Errors++;
          this.client.reportFallback('cache', 'set', errorReason(err));
        } else if (kind === 'oom') {
          this.memoryGuardUntil = Date.now() + MEMORY_GUARD_PAUSE;
          this.counters.writesSkipped++;
          this.logger.warn(
            `Redis refused a cache write for lack of memory (OOM); writes to Redis pause for ${MEMORY_GUARD_PAUSE} ms. ` +
              `Set maxmemory-policy allkeys-lru on the cache instance or raise maxmemory.`,
          );
        } else if (strict) {
          throw err;
        } else {
          this.warnOnce(`commit:${errorReason(err)}`, `cache write to Redis failed: ${errorReason(err)}`);
          return;
        }
      }
    }
    if (p.l1) p.l1.set(w.key, w.value, w.meta, w.buf.length, Date.now(), localOnly);
    if (stored && this.bus) {
      try {
        await this.bus.publish({ k: [[p.config.name, w.key]] });
      } catch (err) {
        this.onRedisError(err, 'publish');
        this.deferred.push({ kind: 'keys', profile: p.config.name, keys: [w.key] });
      }
    }
  }

  /** Runs the Redis part of an invalidation (and its message); defers it when Redis is unavailable. */
  private async runOrDefer(op: InvalidationOp): Promise<number> {
    try {
      return await this.runInvalidation(op);
    } catch (err) {
      if (classify(err) !== 'unavailable') throw err;
      this.counters.l2Errors++;
      this.client.reportFallback('cache', `invalidate-${op.kind}`, errorReason(err));
      this.deferred.push(op);
      return 0;
    }
  }

  private async runInvalidation(op: InvalidationOp): Promise<number> {
    let n = 0;
    if (op.kind === 'keys') {
      const prefix = this.keys.profile(op.profile);
      n = await this.redis.unlink(op.keys.map((k) => prefix + k));
      await this.bus?.publish({ k: op.keys.map((k) => [op.profile, k] as [string, string]) });
    } else if (op.kind === 'tags') {
      for (const tag of op.tags) n += await this.redis.deleteTag(tag);
      await this.bus?.publish({ t: op.tags });
    } else {
      n = await this.redis.deletePrefix(op.profile, op.prefix);
      await this.bus?.publish({ p: [[op.profile, op.prefix]] });
    }
    return n;
  }

  /** Redis is back: drop what was written to L1 only during the outage, and replay deferred invalidations. */
  private onRecovered(): void {
    let dropped = 0;
    for (const p of this.runtimes.values()) dropped += p.l1?.dropLocalOnly() ?? 0;
    if (dropped > 0) {
      this.logger.log(`Redis is back: dropped ${dropped} entr(ies) cached in L1 only during the outage`);
    }
    if (this.deferred.size === 0) return;
    const run = this.deferred.replay(
      (op) => this.runInvalidation(op),
      (err) => classify(err) === 'unavailable', // still down: the next recovery resumes
      (err) => this.logger.warn(`dropped a deferred invalidation: ${errorReason(err)}`),
      () => this.closed,
    );
    this.background.add(run);
    void run.finally(() => this.background.delete(run));
  }

  /** An invalidation message from the bus. Our own are only used to wake lease waiters. */
  private applyMessage(m: InvalidationMessage, own: boolean): void {
    for (const [profile, key] of m.k ?? []) {
      if (!own) {
        this.runtimes.get(profile)?.l1?.delete(key);
        this.invalidateFlights((f) => f.profile === profile && f.key === key);
      }
      this.wake(profile, key);
    }
    for (const [profile, key] of m.l ?? []) this.wake(profile, key);
    if (own) return;
    if (m.t?.length) {
      const tags = m.t;
      for (const p of this.runtimes.values()) p.l1?.deleteTags(tags);
      this.invalidateFlights((f) => f.tags !== undefined && f.tags.some((t) => tags.includes(t)));
    }
    for (const [profile, prefix] of m.p ?? []) {
      this.runtimes.get(profile)?.l1?.deletePrefix(prefix);
      this.invalidateFlights((f) => f.profile === profile && f.key.startsWith(prefix));
    }
  }

  private flushL1(reason: string): void {
    let n = 0;
    for (const p of this.runtimes.values()) {
      if (p.l1) {
        n += p.l1.size;
        p.l1.clear();
      }
    }
    this.invalidateFlights(() => true);
    if (n > 0)
      this.logger.log(`emptied L1 (${n} entries): invalidation messages may have been missed (${reason})`);
  }

  private invalidateFlights(match: (f: Flight) => boolean): void {
    if (this.flights.size === 0) return;
    for (const f of this.flights.values()) if (match(f)) f.invalidated = true;
  }

  private async readL2(fullKey: string): Promise<DecodedEntry | undefined> {
    return (await this.readL2Checked(fullKey)).entry;
  }

  /** Reads an entry; `failed` when Redis could not answer for an availability reason. */
  private async readL2Checked(
    fullKey: string,
  ): Promise<{ entry: DecodedEntry | undefined; failed: boolean }> {
    let buf: Buffer | null;
    try {
      buf = await this.command.getBuffer(fullKey);
    } catch (err) {
      this.onRedisError(err, 'get');
      return { entry: undefined, failed: classify(err) === 'unavailable' };
    }
    return { entry: buf === null ? undefined : this.decodeOrDrop(fullKey, buf), failed: false };
  }

  private decodeOrDrop(fullKey: string, buf: Buffer): DecodedEntry | undefined {
    try {
      return this.codec.decode(buf);
    } catch (err) {
      this.warnOnce('decode', `unreadable cache entry ${fullKey} deleted (${errorReason(err)})`);
      this.redis.drop(fullKey);
      return undefined;
    }
  }

  private fillL1(p: ProfileRuntime, key: string, e: DecodedEntry, now: number): void {
    if (p.l1 !== null && now < e.staleUntil) p.l1.set(key, e.value, e, e.size, now);
  }

  /** A Redis error on a path that serves around it: counted, reported as a fallback, never thrown. */
  private onRedisError(err: unknown, operation: string): void {
    if (classify(err) === 'unavailable') {
      this.counters.l2Errors++;
      this.client.reportFallback('cache', operation, errorReason(err));
    } else {
      this.warnOnce(`${operation}:${errorReason(err)}`, `Redis ${operation} failed: ${errorReason(err)}`);
    }
  }

  private recordLoad(p: ProfileRuntime, ms: number): void {
    this.loadSamples[this.loadCount++ % LOAD_SAMPLES] = ms;
    this.metrics?.observeLoad(p.config.name, ms);
  }

  private loadTime(): CacheStats['loadTime'] {
    const n = Math.min(this.loadCount, LOAD_SAMPLES);
    if (n === 0) return { count: 0, meanMs: null, p50Ms: null, p99Ms: null, maxMs: null };
    const s = Array.from(this.loadSamples.subarray(0, n)).sort((a, b) => a - b);
    const at = (q: number) => round2(s[Math.min(n - 1, Math.floor(q * n))]);
    return {
      count: this.loadCount,
      meanMs: round2(s.reduce((a, b) => a + b, 0) / n),
      p50Ms: at(0.5),
      p99Ms: at(0.99),
      maxMs: round2(s[n - 1]),
    };
  }

  private warnOnce(id: string, message: string): void {
    if (this.warned.has(id)) return;
    if (this.warned.size < 1_000) this.warned.add(id);
    this.logger.warn(message);
  }

  private findMetrics(): MetricsRegistry | undefined {
    let token: Type<unknown> | undefined;
    try {
      // Optional peer: the cache works without @redwing/metrics installed or imported.
      token = (require('@redwing/metrics') as { MetricsService?: Type<unknown> }).MetricsService;
    } catch {
      return undefined;
    }
    if (!token) return undefined;
    try {
      return this.moduleRef.get(token, { strict: false }) as MetricsRegistry;
    } catch {
      return undefined;
    }
  }
}

/** How a Redis error is handled: served around (`unavailable`), memory guard (`oom`), or a real error. */
function classify(err: unknown): 'unavailable' | 'oom' | 'error' {
  const e = err as { fallbackAllowed?: boolean; name?: string; message?: string } | undefined;
  if (e?.fallbackAllowed === true) return 'unavailable';
  if (e?.name === 'ReplyError') {
    const message = e.message ?? '';
    if (message.startsWith('OOM')) return 'oom';
    return UNAVAILABLE_REPLY.test(message) ? 'unavailable' : 'error';
  }
  // Connection-level errors ("Connection is closed.", socket errors) mean Redis was not usable.
  return 'unavailable';
}

function errorReason(err: unknown): string {
  const e = err as { reason?: string; name?: string; message?: string } | undefined;
  return e?.reason ?? (e?.name && e.name !== 'Error' ? e.name : (e?.message ?? String(err)));
}

function rate(hits: number, others: number): number | null {
  const n = hits + others;
  return n === 0 ? null : Math.round((hits / n) * 10_000) / 10_000;
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}
