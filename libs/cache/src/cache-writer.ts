import { describeRedisError } from '@redwing/redis';
import { assertKey } from './cache-keys';
import type { CachedResponse, EntryMeta } from './cache-serializer';
import { redisFailure, type CacheTiers, type ProfileRuntime } from './cache-tiers';
import { duration } from './cache.config';
import type { CacheSetOptions } from './cache.interfaces';
import { DeferredInvalidations, type InvalidationOp } from './deferred-invalidations';

/** How long writes to Redis pause after an OOM refusal, ms. */
const MEMORY_GUARD_PAUSE = 5_000;

/** How one write is made. */
export interface WriteOptions extends CacheSetOptions {
  /** Load time of the value in ms (probabilistic early refresh uses it). @default 0 */
  delta?: number;
  /** Store the value as an HTTP response (`CachedResponse`). @default false */
  response?: boolean;
  /** Throw Redis errors that are not outages (the public `set`); else log them once. @default false */
  strict?: boolean;
  /** Redis already failed this call for availability: write L1 only (an outage write). @default false */
  redisDown?: boolean;
}

/** An entry serialized and checked, ready to be committed. */
export interface PreparedWrite {
  key: string;
  fullKey: string;
  value: unknown;
  buf: Buffer;
  meta: EntryMeta;
}

/**
 * The write path: serializes entries, stores them in Redis and L1 and publishes them, and everything that
 * happens to writes and deletions while Redis is unavailable — outage writes go to L1 only (marked local
 * and dropped when Redis returns, never written back), deletions are deferred and replayed, and an `OOM`
 * refusal pauses Redis writes (the memory guard).
 */
export class CacheWriter {
  /** Writes skipped because Redis refused them for memory. */
  writesSkipped = 0;
  /** Until when (epoch ms) writes to Redis are paused by the memory guard. */
  memoryGuardUntil = 0;
  readonly deferred: DeferredInvalidations;
  private readonly pending = new Set<Promise<unknown>>();
  private closed = false;

  constructor(
    private readonly tiers: CacheTiers,
    maxDeferredInvalidations: number,
  ) {
    this.deferred = new DeferredInvalidations(maxDeferredInvalidations, () =>
      tiers.warnOnce(
        'deferred-full',
        `the queue of invalidations waiting for Redis is full (maxDeferredInvalidations ` +
          `${maxDeferredInvalidations}); further ones are dropped and those entries may be served until their TTL`,
      ),
    );
  }

  /** Serializes, stores in Redis (unless the memory guard pauses writes) and L1, and publishes the key. */
  async write(p: ProfileRuntime, key: string, value: unknown, options: WriteOptions = {}): Promise<void> {
    await this.commit(p, this.prepare(p, { key, value }, options), options);
  }

  /**
   * Serializes and checks one entry (nothing is written).
   * @throws CacheValueTooLargeError / CacheSerializationError for a bad value
   * @throws CacheConfigError for an invalid `ttl`, `staleWhileRevalidate` or `staleIfError`
   */
  prepare(p: ProfileRuntime, entry: { key: string; value: unknown }, options: WriteOptions): PreparedWrite {
    const { key, value } = entry;
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
    const meta: EntryMeta = {
      freshUntil,
      staleUntil: freshUntil + Math.max(swr, sie),
      delta: options.delta ?? 0,
      tags,
    };
    const fullKey = p.prefix + key;
    const codec = this.tiers.codec;
    const buf = options.response
      ? codec.encodeResponse(fullKey, value as CachedResponse, meta)
      : codec.encodeValue(fullKey, value, meta);
    return { key, fullKey, value, buf, meta };
  }

  /** Stores a prepared entry; see {@link WriteOptions} for `strict` and `redisDown`. */
  async commit(
    p: ProfileRuntime,
    w: PreparedWrite,
    mode: Pick<WriteOptions, 'strict' | 'redisDown'> = {},
  ): Promise<void> {
    const tiers = this.tiers;
    let stored = false;
    let localOnly = false;
    const start = Date.now();
    const px = Math.max(1, Math.round(w.meta.staleUntil - start));
    if (mode.redisDown) {
      localOnly = true;
    } else if (start < this.memoryGuardUntil) {
      this.writesSkipped++;
    } else {
      try {
        await tiers.redis.write({ fullKey: w.fullKey, buf: w.buf, px, tags: w.meta.tags }, (tagKey) =>
          tiers.warnOnce(
            `tag:${tagKey}`,
            `${tagKey} is not a set; something else writes into the cache namespace`,
          ),
        );
        stored = true;
      } catch (err) {
        const kind = redisFailure(err);
        if (kind === 'unavailable') {
          localOnly = true;
          tiers.reportUnavailable(err, 'set');
        } else if (kind === 'oom') {
          this.memoryGuardUntil = Date.now() + MEMORY_GUARD_PAUSE;
          this.writesSkipped++;
          tiers.logger.warn(
            `Redis refused a cache write for lack of memory (OOM); writes to Redis pause for ${MEMORY_GUARD_PAUSE} ms. ` +
              `Set maxmemory-policy allkeys-lru on the cache instance or raise maxmemory.`,
          );
        } else if (mode.strict) {
          throw err;
        } else {
          const reason = describeRedisError(err);
          tiers.warnOnce(`commit:${reason}`, `cache write to Redis failed: ${reason}`);
          return;
        }
      }
    }
    if (p.l1) p.l1.set(w.key, { ...w.meta, value: w.value, size: w.buf.length }, Date.now(), localOnly);
    if (stored && tiers.bus) {
      try {
        await tiers.bus.publish({ k: [[p.config.name, w.key]] });
      } catch (err) {
        tiers.onRedisError(err, 'publish');
        this.deferred.push({ kind: 'keys', profile: p.config.name, keys: [w.key] });
      }
    }
  }

  /** Runs the Redis part of an invalidation (and its message); defers it when Redis is unavailable. */
  async runOrDefer(op: InvalidationOp): Promise<number> {
    try {
      return await this.runInvalidation(op);
    } catch (err) {
      if (redisFailure(err) !== 'unavailable') throw err;
      this.tiers.reportUnavailable(err, `invalidate-${op.kind}`);
      this.deferred.push(op);
      return 0;
    }
  }

  /** Redis is back: drop what was written to L1 only during the outage, and replay deferred invalidations. */
  onRecovered(): void {
    let dropped = 0;
    for (const p of this.tiers.all()) dropped += p.l1?.dropLocalOnly() ?? 0;
    if (dropped > 0) {
      this.tiers.logger.log(
        `Redis is back: dropped ${dropped} entr(ies) cached in L1 only during the outage`,
      );
    }
    if (this.deferred.size === 0) return;
    const run = this.deferred.replay(
      (op) => this.runInvalidation(op),
      (err) => redisFailure(err) === 'unavailable', // still down: the next recovery resumes
      (err) => this.tiers.logger.warn(`dropped a deferred invalidation: ${describeRedisError(err)}`),
      () => this.closed,
    );
    this.pending.add(run);
    void run.finally(() => this.pending.delete(run));
  }

  /** Stops replaying; resolves when a replay in progress has stopped. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.pending]);
  }

  private async runInvalidation(op: InvalidationOp): Promise<number> {
    const { redis, bus, keys } = this.tiers;
    let n = 0;
    if (op.kind === 'keys') {
      const prefix = keys.profile(op.profile);
      n = await redis.unlink(op.keys.map((k) => prefix + k));
      await bus?.publish({ k: op.keys.map((k) => [op.profile, k] as [string, string]) });
    } else if (op.kind === 'tags') {
      for (const tag of op.tags) n += await redis.deleteTag(tag);
      await bus?.publish({ t: op.tags });
    } else {
      n = await redis.deletePrefix(op.profile, op.prefix);
      await bus?.publish({ p: [[op.profile, op.prefix]] });
    }
    return n;
  }
}
