import { randomBytes } from 'node:crypto';
import {
  Inject,
  Injectable,
  Logger,
  Optional,
  type OnModuleDestroy,
  type OnModuleInit,
} from '@nestjs/common';
import {
  REDWING_METRICS,
  RedisClientManager,
  type ManagedRedisClient,
  type MetricsRegistry,
} from '@redwing/redis';
import { CacheInspector, clientsSharing, recommend } from './cache-inspector';
import { assertKey, CacheKeys } from './cache-keys';
import { CacheMetrics } from './cache-metrics';
import { CacheCodec, type CachedResponse } from './cache-serializer';
import { CacheTiers } from './cache-tiers';
import { CacheWriter } from './cache-writer';
import { resolveCacheConfig, type ResolvedCacheConfig, type ResolvedHttpConfig } from './cache.config';
import type {
  CacheEntryInput,
  CacheEvictInput,
  CacheLookup,
  CacheModuleOptions,
  CacheReadOptions,
  CacheSetOptions,
  CacheStats,
  GetOrSetOptions,
  ResolveOptions,
} from './cache.interfaces';
import { CACHE_MODULE_OPTIONS } from './cache.module-definition';
import { InvalidationBus, type InvalidationMessage } from './invalidation-bus';
import { SingleFlight } from './single-flight';

/**
 * Two-tier cache on `@redwing/redis`: a bounded in-process tier (L1) in front of Redis (L2), per named
 * profile, with cross-instance L1 invalidation, stampede protection and a degradation path for when Redis is
 * down (L1 keeps serving, Redis reads are misses, writes go to L1 only and are dropped — never written back —
 * when Redis returns).
 *
 * This class is the facade: the tiers live in `cache-tiers.ts`, single-flight and leases in
 * `single-flight.ts`, the write path (outage writes, deferred invalidations, memory guard) in
 * `cache-writer.ts`, cross-instance invalidation in `invalidation-bus.ts`.
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
  private readonly tiers: CacheTiers;
  private readonly writer: CacheWriter;
  private readonly flight: SingleFlight;
  private readonly bus: InvalidationBus | null;
  private readonly inspector: CacheInspector;
  private readonly instanceId = randomBytes(6).toString('base64url');
  private readonly unlisten: Array<() => void> = [];
  private closed = false;
  private metrics: CacheMetrics | null = null;

  constructor(
    @Inject(CACHE_MODULE_OPTIONS) options: CacheModuleOptions,
    private readonly manager: RedisClientManager,
    @Optional() @Inject(REDWING_METRICS) private readonly registry?: MetricsRegistry,
  ) {
    this.config = resolveCacheConfig(options ?? {});
    this.client = manager.get(this.config.client);
    const keys = new CacheKeys(manager.keyPrefix);
    this.tiers = new CacheTiers({ config: this.config, client: this.client, keys, logger: this.logger });
    this.writer = new CacheWriter(this.tiers, this.config.maxDeferredInvalidations);
    this.flight = new SingleFlight({
      tiers: this.tiers,
      writer: this.writer,
      instanceId: this.instanceId,
      onLoad: (profile, ms) => this.metrics?.observeLoad(profile, ms),
    });
    this.bus = this.config.invalidation
      ? new InvalidationBus({
          client: this.client,
          keys,
          store: this.tiers.redis,
          origin: this.instanceId,
          handlers: { apply: (m, own) => this.applyMessage(m, own), flush: (reason) => this.flushL1(reason) },
          logger: this.logger,
        })
      : null;
    this.tiers.bus = this.bus;
    this.inspector = new CacheInspector(this.client, keys);
  }

  /** How `CacheInterceptor` identifies users and treats credentials (the module's `http` options, resolved). */
  get http(): Readonly<ResolvedHttpConfig> {
    return this.config.http;
  }

  onModuleInit(): void {
    this.bus?.start();
    const name = this.client.name;
    this.unlisten.push(
      this.manager.events.on('state', (e) => {
        if (e.client === name && e.current === 'ready') this.writer.onRecovered();
      }),
      this.manager.events.on('breaker', (e) => {
        if (e.client === name && (e.current === 'closed' || e.current === 'forced-closed'))
          this.writer.onRecovered();
      }),
    );
    if (this.registry) {
      this.metrics = new CacheMetrics(this.registry, {
        profiles: () =>
          [...this.tiers.all()].map((p) => ({
            name: p.config.name,
            counters: p.counters,
            l1: p.l1?.stats() ?? null,
          })),
        invalidation: () => this.bus?.counters ?? { published: 0, received: 0, flushes: 0 },
        l2Errors: () => this.tiers.l2Errors,
      });
    }
  }

  async onModuleDestroy(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const off of this.unlisten.splice(0)) off();
    // Background refreshes finish (their writes are skipped now); a hung loader does not hold shutdown.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([this.flight.close(), this.writer.close()]),
      new Promise((r) => (timer = setTimeout(r, 2 * this.client.config.commandTimeout))),
    ]);
    clearTimeout(timer);
    await this.bus?.stop();
    this.metrics?.sync();
    this.metrics?.stop();
  }

  /**
   * The fresh value of `key`, from L1 or Redis; `undefined` when absent, stale, or Redis is unavailable.
   * A cached `undefined` also reads as `undefined`; use `has()` to tell them apart.
   * @throws CacheConfigError for an unknown `profile`
   */
  async get<T = unknown>(key: string, options?: CacheReadOptions): Promise<T | undefined> {
    if (typeof key !== 'string' || key.length === 0) assertKey(key);
    const tiers = this.tiers;
    const p = options?.profile === undefined ? tiers.defaultRuntime : tiers.runtime(options.profile);
    const now = Date.now();
    const cached = tiers.peek(p, key, now);
    if (cached !== undefined && now < cached.freshUntil) {
      p.counters.l1Hits++;
      return cached.value as T;
    }
    // The hot path of an L2 hit: one GET (batched per event-loop turn), no intermediate promises.
    const fullKey = p.prefix + key;
    const read = tiers.redis.readTracked(fullKey);
    let buf: Buffer | null;
    try {
      buf = await read.promise;
    } catch (err) {
      tiers.onRedisError(err, 'get');
      p.counters.misses++;
      return undefined;
    }
    if (buf !== null) {
      const e = tiers.decodeOrDrop(fullKey, buf);
      if (e !== undefined && now < e.freshUntil) {
        // Not if a write or an invalidation was applied since the read went out (it may concern this copy).
        if (read.sentAt === tiers.redis.generation) tiers.fillL1(p, key, e, now);
        p.counters.l2Hits++;
        return e.value as T;
      }
    }
    p.counters.misses++;
    return undefined;
  }

  /**
   * The fresh value of `key` from this instance's L1, synchronously — no Redis, no promise — or `undefined`
   * (absent from L1, stale, L1 off or not readable now, or the profile refreshes early, which needs the
   * full path). A hit counts as an L1 hit; a miss is not counted (follow it with `get`, `getOrSet` or
   * `resolve`, which count it). `CacheInterceptor`'s fast path for route hits.
   * @throws CacheConfigError for an unknown `profile`
   */
  peek<T = unknown>(key: string, options?: CacheReadOptions): T | undefined {
    const p = this.tiers.runtime(options?.profile);
    if (p.config.earlyRefresh > 0) return undefined;
    const now = Date.now();
    const e = this.tiers.peek(p, key, now);
    if (e === undefined || now >= e.freshUntil) return undefined;
    p.counters.l1Hits++;
    return e.value as T;
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
    const p = this.tiers.runtime(options?.profile);
    const now = Date.now();
    const e = this.tiers.peek(p, key, now);
    if (e !== undefined && now < e.freshUntil) return e.freshUntil - now;
    let head: Buffer | null;
    try {
      head = await this.tiers.redis.readHead(p.prefix + key, 20);
    } catch (err) {
      this.tiers.onRedisError(err, 'ttl');
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
    const tiers = this.tiers;
    const p = tiers.runtime(options?.profile);
    const out = new Array<T | undefined>(keys.length);
    const missing: number[] = [];
    const now = Date.now();
    keys.forEach((key, i) => {
      const e = tiers.peek(p, key, now);
      if (e !== undefined && now < e.freshUntil) {
        p.counters.l1Hits++;
        out[i] = e.value as T;
      } else missing.push(i);
    });
    if (missing.length === 0) return out;
    const fullKeys = missing.map((i) => p.prefix + keys[i]);
    let found = new Map<string, Buffer | null>();
    try {
      found = await tiers.redis.readMany(fullKeys);
    } catch (err) {
      tiers.onRedisError(err, 'mget');
    }
    const later = Date.now();
    missing.forEach((i, j) => {
      const buf = found.get(fullKeys[j]);
      const e = buf ? tiers.decodeOrDrop(fullKeys[j], buf) : undefined;
      if (e !== undefined && later < e.freshUntil) {
        tiers.fillL1(p, keys[i], e, later);
        p.counters.l2Hits++;
        out[i] = e.value as T;
      } else p.counters.misses++;
    });
    return out;
  }

  /**
   * Stores `value` under `key` for `ttl` ms (in Redis and L1) and invalidates other instances' L1 copies.
   * While Redis is unavailable the value goes to L1 only and is dropped when Redis returns (never written
   * back, so it cannot overwrite a newer value).
   * @throws CacheValueTooLargeError when the serialized value exceeds `maxValueSize`
   * @throws CacheSerializationError when the value cannot be serialized (e.g. circular)
   */
  async set<T>(key: string, value: T, options?: CacheSetOptions): Promise<void> {
    assertKey(key);
    const p = this.tiers.runtime(options?.profile);
    this.flight.invalidate((f) => f.profile === p.config.name && f.key === key);
    await this.writer.write(p, key, value, { ...options, strict: true });
  }

  /**
   * Stores an HTTP response (a `CachedResponse`) as a route entry — what `CacheInterceptor` does for
   * `@CachePut`. Unlike `set`, a Redis error that is not an outage is logged, not thrown.
   * @throws CacheValueTooLargeError when the serialized response exceeds `maxValueSize`
   */
  async storeResponse(key: string, response: CachedResponse, options?: CacheSetOptions): Promise<void> {
    assertKey(key);
    const p = this.tiers.runtime(options?.profile);
    this.flight.invalidate((f) => f.profile === p.config.name && f.key === key);
    await this.writer.write(p, key, response, { ...options, response: true });
  }

  /**
   * Stores several entries (each may have its own `ttl` and `tags`); one invalidation message for all.
   * Every value is serialized and checked before anything is written.
   * @throws CacheValueTooLargeError / CacheSerializationError for the first bad value (nothing written)
   */
  async mset(entries: ReadonlyArray<CacheEntryInput>, options?: CacheSetOptions): Promise<void> {
    const p = this.tiers.runtime(options?.profile);
    const prepared = entries.map((e) => {
      assertKey(e.key);
      return this.writer.prepare(p, e, {
        ...options,
        ttl: e.ttl ?? options?.ttl,
        tags: e.tags ?? options?.tags,
      });
    });
    const keys = new Set(entries.map((e) => e.key));
    this.flight.invalidate((f) => f.profile === p.config.name && keys.has(f.key));
    await Promise.all(prepared.map((w) => this.writer.commit(p, w, { strict: true })));
  }

  /**
   * Deletes keys from L1 and Redis and from other instances' L1. While Redis is down the deletion is kept
   * and replayed when it returns (deleting twice is harmless); it then resolves to 0.
   * @returns how many entries Redis deleted
   */
  async del(keys: string | readonly string[], options?: CacheReadOptions): Promise<number> {
    const list = typeof keys === 'string' ? [keys] : [...keys];
    list.forEach((k) => assertKey(k));
    const p = this.tiers.runtime(options?.profile);
    for (const key of list) p.l1?.delete(key);
    const set = new Set(list);
    this.flight.invalidate((f) => f.profile === p.config.name && set.has(f.key));
    return this.writer.runOrDefer({ kind: 'keys', profile: p.config.name, keys: list });
  }

  /**
   * Deletes every entry (of every profile) carrying one of `tags`, in Redis and in every instance's L1.
   * Tags are matched exactly, never as patterns. Deferred like `del` while Redis is down.
   * @returns how many entries Redis deleted
   */
  async invalidateTags(tags: readonly string[]): Promise<number> {
    const list = [...new Set(tags)];
    list.forEach((t) => assertKey(t, 'tag'));
    for (const p of this.tiers.all()) p.l1?.deleteTags(list);
    this.flight.invalidate((f) => f.tags !== undefined && f.tags.some((t) => list.includes(t)));
    if (list.length === 0) return 0;
    return this.writer.runOrDefer({ kind: 'tags', tags: list });
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
    const p = this.tiers.runtime(options?.profile);
    p.l1?.deletePrefix(prefix);
    this.flight.invalidate((f) => f.profile === p.config.name && f.key.startsWith(prefix));
    return this.writer.runOrDefer({ kind: 'prefix', profile: p.config.name, prefix });
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

  /**
   * The value of `key`, loading it with `loader` on a miss. Concurrent callers in this process share one
   * load (always); with `lock` they share it across instances too. Serves stale values within
   * `staleWhileRevalidate` (refreshing in the background) and, when the loader fails, within
   * `staleIfError`. A loader error is rethrown when no stale value may be served. Redis failures never fail
   * the call: it loads and keeps the value in L1.
   */
  async getOrSet<T>(key: string, loader: () => T | Promise<T>, options?: GetOrSetOptions<T>): Promise<T> {
    return (await this.resolve(key, loader, options)).value;
  }

  /**
   * `getOrSet` that also says how the value was found (`hit`, `stale` or `miss`), e.g. for an `X-Cache`
   * header; with `response: true` the value is stored as an HTTP response, with `refresh: true` the cached
   * copy is skipped.
   */
  resolve<T>(
    key: string,
    loader: () => T | Promise<T>,
    options: ResolveOptions<T> = {},
  ): Promise<CacheLookup<T>> {
    assertKey(key);
    return this.flight.resolve(this.tiers.runtime(options.profile), key, loader, options);
  }

  /**
   * Checks that a profile is configured (for start-up checks of decorator metadata).
   * @throws CacheConfigError naming the profile and the configured ones
   */
  assertProfile(profile: string | undefined): void {
    this.tiers.runtime(profile);
  }

  /**
   * Counters, L1 size, invalidation and lock state, and (unless `redis: false`) Redis `INFO memory`, the
   * eviction policy and the number of keys in the namespace (SCAN, never KEYS), with recommendations.
   */
  async stats(options: { redis?: boolean } = {}): Promise<CacheStats> {
    const profiles: CacheStats['profiles'] = {};
    const total = { l1Hits: 0, l2Hits: 0, misses: 0, stale: 0, loads: 0, loadErrors: 0, coalesced: 0 };
    const l1 = { entries: 0, bytes: 0, maxEntries: 0, maxBytes: 0, evictions: 0, localOnly: 0 };
    for (const p of this.tiers.all()) {
      const c = p.counters;
      const hits = c.l1Hits + c.l2Hits;
      const s = p.l1?.stats() ?? null;
      profiles[p.config.name] = { hits, ...c, hitRate: rate(hits, c.misses + c.stale), l1: s };
      for (const k of Object.keys(total) as Array<keyof typeof total>) total[k] += c[k];
      if (s) for (const k of Object.keys(l1) as Array<keyof typeof l1>) l1[k] += s[k];
    }
    const hits = total.l1Hits + total.l2Hits;
    const bus = this.bus?.counters;
    const writer = this.writer;
    const base: Omit<CacheStats, 'redis' | 'recommendations'> = {
      hits,
      ...total,
      hitRate: rate(hits, total.misses + total.stale),
      loadTime: this.flight.loadTime(),
      l1,
      l2: {
        available: this.client.isAvailable(),
        errors: this.tiers.l2Errors,
        writesSkipped: writer.writesSkipped,
        memoryGuardUntil:
          Date.now() < writer.memoryGuardUntil ? new Date(writer.memoryGuardUntil).toISOString() : null,
      },
      invalidation: {
        enabled: this.bus !== null,
        synced: this.bus?.isSynced ?? false,
        published: bus?.published ?? 0,
        received: bus?.received ?? 0,
        flushes: bus?.flushes ?? 0,
        deferred: writer.deferred.size,
        replayed: writer.deferred.counters.replayed,
        dropped: writer.deferred.counters.dropped,
      },
      lock: { ...this.flight.lockCounters },
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

  /** An invalidation message from the bus. Our own are only used to wake lease waiters. */
  private applyMessage(m: InvalidationMessage, own: boolean): void {
    const flight = this.flight;
    for (const [profile, key] of m.k ?? []) {
      if (!own) {
        this.tiers.find(profile)?.l1?.delete(key);
        flight.invalidate((f) => f.profile === profile && f.key === key, 'remote');
      }
      flight.wake(profile, key);
    }
    for (const [profile, key] of m.l ?? []) flight.wake(profile, key);
    if (own) return;
    if (m.t?.length) {
      const tags = m.t;
      for (const p of this.tiers.all()) p.l1?.deleteTags(tags);
      flight.invalidate((f) => f.tags !== undefined && f.tags.some((t) => tags.includes(t)), 'remote');
    }
    for (const [profile, prefix] of m.p ?? []) {
      this.tiers.find(profile)?.l1?.deletePrefix(prefix);
      flight.invalidate((f) => f.profile === profile && f.key.startsWith(prefix), 'remote');
    }
  }

  private flushL1(reason: string): void {
    let n = 0;
    for (const p of this.tiers.all()) {
      if (p.l1) {
        n += p.l1.size;
        p.l1.clear();
      }
    }
    this.flight.invalidate(() => true);
    if (n > 0)
      this.logger.log(`emptied L1 (${n} entries): invalidation messages may have been missed (${reason})`);
  }
}

function rate(hits: number, others: number): number | null {
  const n = hits + others;
  return n === 0 ? null : Math.round((hits / n) * 10_000) / 10_000;
}
