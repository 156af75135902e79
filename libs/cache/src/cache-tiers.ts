import type { Logger } from '@nestjs/common';
import { describeRedisError, isRedisUnavailable, type ManagedRedisClient } from '@redwing/redis';
import type { CacheKeys } from './cache-keys';
import type { ProfileCounters } from './cache-metrics';
import { CacheCodec, type DecodedEntry } from './cache-serializer';
import type { ResolvedCacheConfig, ResolvedProfile } from './cache.config';
import { DEFAULT_PROFILE } from './cache.constants';
import { CacheConfigError } from './cache.errors';
import type { InvalidationBus } from './invalidation-bus';
import { L1Store, type L1Entry } from './l1-store';
import { RedisTier } from './redis-tier';

/** One named cache at run time. */
export interface ProfileRuntime {
  readonly config: ResolvedProfile;
  readonly l1: L1Store | null;
  /** `<prefix>:cache:<profile>:` */
  readonly prefix: string;
  readonly counters: ProfileCounters;
}

/** How a Redis error is handled: served around (`unavailable`), memory guard (`oom`), or a real error. */
export type RedisFailure = 'unavailable' | 'oom' | 'error';

/** Classifies a Redis error for the cache: outages as `@redwing/redis` defines them, plus `OOM` refusals. */
export function redisFailure(err: unknown): RedisFailure {
  if (isRedisUnavailable(err)) return 'unavailable';
  const e = err as { name?: unknown; message?: unknown } | null;
  if (e?.name === 'ReplyError' && typeof e.message === 'string' && e.message.startsWith('OOM')) return 'oom';
  return 'error';
}

/** What {@link CacheTiers} is built from. */
export interface CacheTiersOptions {
  config: ResolvedCacheConfig;
  client: ManagedRedisClient;
  keys: CacheKeys;
  logger: Logger;
}

/**
 * The two tiers of every profile — the in-process L1 stores and Redis (L2, through {@link RedisTier}) — and
 * how a failed Redis read is served around. Shared by the facade, the single-flight and the writer; it
 * holds no per-call state.
 */
export class CacheTiers {
  readonly redis: RedisTier;
  readonly codec: CacheCodec;
  readonly client: ManagedRedisClient;
  readonly keys: CacheKeys;
  readonly logger: Logger;
  readonly defaultRuntime: ProfileRuntime;
  /** Set once the invalidation bus exists (null when invalidation is off). */
  bus: InvalidationBus | null = null;
  /** Redis reads and writes that failed for availability and were served around. */
  l2Errors = 0;
  private readonly runtimes = new Map<string, ProfileRuntime>();
  private readonly warned = new Set<string>();

  constructor(options: CacheTiersOptions) {
    const { config, client, keys, logger } = options;
    this.client = client;
    this.keys = keys;
    this.logger = logger;
    this.redis = new RedisTier(client, keys);
    this.codec = new CacheCodec({ compression: config.compression, maxValueSize: config.maxValueSize });
    for (const [name, profile] of config.profiles) {
      this.runtimes.set(name, {
        config: profile,
        l1: profile.l1 ? new L1Store(profile.l1.maxEntries, profile.l1.maxBytes, profile.l1.ttl) : null,
        prefix: keys.profile(name),
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
  }

  /**
   * The runtime of a profile (`undefined` = the default one).
   * @throws CacheConfigError for a profile the module does not configure
   */
  runtime(profile: string | undefined): ProfileRuntime {
    if (profile === undefined) return this.defaultRuntime;
    const p = this.runtimes.get(profile);
    if (!p) {
      throw new CacheConfigError(
        'profile',
        `"${profile}" is not a configured cache profile (configured: ${[...this.runtimes.keys()].join(', ')}); ` +
          `add it under CacheModule.forRoot({ profiles: { ${profile}: { ttl } } })`,
      );
    }
    return p;
  }

  /** Every profile's runtime. */
  all(): IterableIterator<ProfileRuntime> {
    return this.runtimes.values();
  }

  /** The runtime of a profile name, or undefined (names from other instances' messages). */
  find(profile: string): ProfileRuntime | undefined {
    return this.runtimes.get(profile);
  }

  /** A write or an invalidation is being applied (see `RedisTier.invalidated`). */
  invalidated(origin: 'local' | 'remote'): void {
    this.redis.invalidated(origin);
  }

  /** L1 may answer unless invalidations are not arriving while Redis itself is reachable. */
  l1Readable(): boolean {
    return this.bus === null || this.bus.isSynced || !this.client.isAvailable();
  }

  /** A fresh-or-stale L1 entry, if the profile has L1 and it may be read now. */
  peek(p: ProfileRuntime, key: string, now: number): L1Entry | undefined {
    return p.l1 !== null && this.l1Readable() ? p.l1.get(key, now) : undefined;
  }

  /** Reads an entry from Redis; undefined when absent, unreadable, or Redis failed. */
  async readL2(fullKey: string): Promise<DecodedEntry | undefined> {
    return (await this.readL2Checked(fullKey)).entry;
  }

  /** Reads an entry; `failed` when Redis could not answer for an availability reason. */
  async readL2Checked(fullKey: string): Promise<{ entry: DecodedEntry | undefined; failed: boolean }> {
    let buf: Buffer | null;
    try {
      buf = await this.redis.read(fullKey);
    } catch (err) {
      this.onRedisError(err, 'get');
      return { entry: undefined, failed: redisFailure(err) === 'unavailable' };
    }
    return { entry: buf === null ? undefined : this.decodeOrDrop(fullKey, buf), failed: false };
  }

  /** Decodes a stored entry; an unreadable one is deleted (best effort) and reads as absent. */
  decodeOrDrop(fullKey: string, buf: Buffer): DecodedEntry | undefined {
    try {
      return this.codec.decode(buf);
    } catch (err) {
      this.warnOnce('decode', `unreadable cache entry ${fullKey} deleted (${describeRedisError(err)})`);
      this.redis.drop(fullKey);
      return undefined;
    }
  }

  /** Copies an entry read from Redis into L1 while it may still be served. */
  fillL1(p: ProfileRuntime, key: string, e: DecodedEntry, now: number): void {
    if (p.l1 !== null && now < e.staleUntil) p.l1.set(key, e, now);
  }

  /** A Redis error on a path that serves around it: counted, reported as a fallback, never thrown. */
  onRedisError(err: unknown, operation: string): void {
    if (redisFailure(err) === 'unavailable') this.reportUnavailable(err, operation);
    else
      this.warnOnce(
        `${operation}:${describeRedisError(err)}`,
        `Redis ${operation} failed: ${describeRedisError(err)}`,
      );
  }

  /** Counts an outage served around and tells `@redwing/redis` (fallback event). */
  reportUnavailable(err: unknown, operation: string): void {
    this.l2Errors++;
    this.client.reportFallback('cache', operation, describeRedisError(err));
  }

  /** Logs a warning once per `id` (at most 1,000 distinct ids are remembered). */
  warnOnce(id: string, message: string): void {
    if (this.warned.has(id)) return;
    if (this.warned.size < 1_000) this.warned.add(id);
    this.logger.warn(message);
  }
}
