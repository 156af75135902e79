import type { DecodedEntry } from './cache-serializer';
import { redisFailure, type CacheTiers, type ProfileRuntime } from './cache-tiers';
import type { CacheWriter } from './cache-writer';
import { resolveEarlyRefresh, resolveLock } from './cache.config';
import type { CacheLookup, CacheStats, ResolveOptions } from './cache.interfaces';

const LOAD_SAMPLES = 512;

type FlightMode = 'get' | 'refresh' | 'reload';

/** One `getOrSet` call as the single-flight handles it. */
interface Call<T> {
  p: ProfileRuntime;
  key: string;
  /** `<prefix>:cache:<profile>:<key>` */
  fullKey: string;
  loader: () => T | Promise<T>;
  options: ResolveOptions<T>;
}

/** A load in progress, shared by every caller of the same key in this process. */
export interface Flight {
  promise: Promise<CacheLookup<unknown>>;
  profile: string;
  key: string;
  /** `get`: a caller's miss; `refresh`/`reload`: a background refresh of a copy that is still served. */
  mode: FlightMode;
  tags: readonly string[] | undefined;
  /** An invalidation of this key arrived while loading: hand the value back but do not store it. */
  invalidated: boolean;
  /** A background refresh to start once this flight is over (stale or early-refresh hit from L2). */
  after?: FlightMode;
}

interface Lease {
  token: string;
  leaseKey: string;
}

type LeaseResult =
  ({ kind: 'lease' } & Lease) | { kind: 'value'; entry: DecodedEntry } | { kind: 'busy' } | { kind: 'none' };

type Stale = { value: unknown; freshUntil: number; staleUntil: number };

/** What {@link SingleFlight} is built from. */
export interface SingleFlightOptions {
  tiers: CacheTiers;
  writer: CacheWriter;
  /** This instance's id (lease tokens, wake-up messages). */
  instanceId: string;
  /** One loader call took `ms` (for metrics). */
  onLoad?: (profile: string, ms: number) => void;
}

/**
 * Stampede protection for `getOrSet`: one load per key in the process (flights), optionally one across
 * instances (a lease in Redis, `SET NX PX`, waiters woken over pub/sub), stale-while-revalidate and
 * stale-if-error, probabilistic early refresh (XFetch) and background refreshes. Loaded values are stored
 * through the {@link CacheWriter}; a load that an invalidation overtook is handed back but not stored.
 */
export class SingleFlight {
  readonly lockCounters = { acquired: 0, waits: 0, waitHits: 0, timeouts: 0, lost: 0 };
  private readonly tiers: CacheTiers;
  private readonly writer: CacheWriter;
  private readonly instanceId: string;
  private readonly onLoad: (profile: string, ms: number) => void;
  private readonly flights = new Map<string, Flight>();
  private readonly waiters = new Map<string, Set<() => void>>();
  private readonly background = new Set<Promise<unknown>>();
  private readonly loadSamples = new Float64Array(LOAD_SAMPLES);
  private loadCount = 0;
  private leaseSeq = 0;
  private closed = false;

  constructor(options: SingleFlightOptions) {
    this.tiers = options.tiers;
    this.writer = options.writer;
    this.instanceId = options.instanceId;
    this.onLoad = options.onLoad ?? (() => undefined);
  }

  /**
   * The value of `key` and how it was found, loading it on a miss (see `CacheService.getOrSet`). A hit —
   * fresh, or stale within the window — never enters the single-flight: L1, else one plain Redis read
   * (batched per event-loop turn by {@link RedisTier}), and the value is served. Only a miss starts a
   * flight, or joins the one in progress, so concurrent misses of a key still load once.
   */
  resolve<T>(
    p: ProfileRuntime,
    key: string,
    loader: () => T | Promise<T>,
    options: ResolveOptions<T>,
  ): Promise<CacheLookup<T>> {
    const call: Call<T> = { p, key, fullKey: p.prefix + key, loader, options };
    if (options.refresh) return this.reload(call);
    const now = Date.now();
    let stale: Stale | undefined;
    const e = this.tiers.peek(p, key, now);
    if (e !== undefined) {
      const served = this.serve(call, e, { now, tier: 'l1' });
      if (served) return Promise.resolve(served);
      stale = e;
    }
    // A load of this key is running: its value is what a read would find next, so wait for it. A background
    // refresh is not joined: the cached copy it refreshes is still served.
    const existing = this.flights.get(call.fullKey);
    if (existing !== undefined && existing.mode === 'get') return this.join<T>(p, existing);
    return this.readThenResolve(call, stale);
  }

  /** The lean read of {@link resolve}: a hit is served from it; a miss goes to the single-flight. */
  private async readThenResolve<T>(call: Call<T>, stale: Stale | undefined): Promise<CacheLookup<T>> {
    const { p, key, fullKey } = call;
    const tiers = this.tiers;
    const read = tiers.redis.readTracked(fullKey);
    let buf: Buffer | null = null;
    let failed = false;
    try {
      buf = await read.promise;
    } catch (err) {
      tiers.onRedisError(err, 'get');
      failed = redisFailure(err) === 'unavailable';
    }
    const found = buf === null ? undefined : tiers.decodeOrDrop(fullKey, buf);
    if (found !== undefined) {
      const now = Date.now();
      // A write or invalidation applied since the read went out may concern this copy: serve it, keep it out of L1.
      if (read.sentAt === tiers.redis.generation) tiers.fillL1(p, key, found, now);
      const served = this.serve(call, found, { now, tier: 'l2' });
      if (served) return served;
      if (now < found.staleUntil) stale = found;
    }
    const existing = this.flights.get(fullKey);
    if (existing !== undefined) return this.join<T>(p, existing);
    return this.startFlight(call, 'get', stale, failed).promise as Promise<CacheLookup<T>>;
  }

  private join<T>(p: ProfileRuntime, flight: Flight): Promise<CacheLookup<T>> {
    p.counters.coalesced++;
    return flight.promise as Promise<CacheLookup<T>>;
  }

  /**
   * Marks the flights `match` selects as overtaken by an invalidation (their values are not stored).
   * `remote`: another instance's message (see `RedisTier.invalidated`).
   */
  invalidate(match: (f: Flight) => boolean, origin: 'local' | 'remote' = 'local'): void {
    this.tiers.invalidated(origin);
    if (this.flights.size === 0) return;
    for (const f of this.flights.values()) if (match(f)) f.invalidated = true;
  }

  /** Wakes the callers waiting for another instance's load of `key`. */
  wake(profile: string, key: string): void {
    const set = this.waiters.get(this.tiers.keys.profile(profile) + key);
    if (set) for (const wake of [...set]) wake();
  }

  /** Wakes every waiter, starts no more refreshes; resolves when the background refreshes have settled. */
  async close(): Promise<void> {
    this.closed = true;
    for (const set of this.waiters.values()) for (const wake of [...set]) wake();
    await Promise.allSettled([...this.background]);
  }

  /** Loader durations over the last {@link LOAD_SAMPLES} loads. */
  loadTime(): CacheStats['loadTime'] {
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

  /** `refresh: true`: skip the cached copy, run the loader, store its value (a request's `no-cache`). */
  private async reload<T>(call: Call<T>): Promise<CacheLookup<T>> {
    const { p, key, options } = call;
    p.counters.misses++;
    p.counters.loads++;
    const value = await call.loader();
    if (!this.closed && !options.unless?.(value)) {
      this.invalidate((f) => f.profile === p.config.name && f.key === key);
      await this.store(call, value, { delta: 0, redisDown: false });
    }
    return { value, outcome: 'miss' };
  }

  /** Serve a cached copy if it is fresh, or stale within the window (starting a refresh); else undefined. */
  private serve<T>(
    call: Call<T>,
    e: Stale & { delta: number },
    from: { now: number; tier: 'l1' | 'l2'; flight?: Flight },
  ): CacheLookup<T> | undefined {
    const { p, options } = call;
    const { now, flight } = from;
    if (now < e.freshUntil) {
      if (from.tier === 'l1') p.counters.l1Hits++;
      else p.counters.l2Hits++;
      const beta =
        options.earlyRefresh === undefined
          ? p.config.earlyRefresh
          : resolveEarlyRefresh('earlyRefresh', options.earlyRefresh);
      // XFetch: refresh early with a probability that grows as expiry nears, scaled by the load time.
      if (beta > 0 && e.delta > 0 && now - e.delta * beta * Math.log(Math.random()) >= e.freshUntil) {
        if (flight) flight.after = 'reload';
        else this.refreshInBackground(call, 'reload');
      }
      return { value: e.value as T, outcome: 'hit' };
    }
    const swr = options.staleWhileRevalidate ?? p.config.staleWhileRevalidate;
    if (now < e.freshUntil + swr && now < e.staleUntil) {
      p.counters.stale++;
      if (flight) flight.after = 'refresh';
      else this.refreshInBackground(call, 'refresh');
      return { value: e.value as T, outcome: 'stale' };
    }
    return undefined;
  }

  private refreshInBackground<T>(call: Call<T>, mode: FlightMode): void {
    if (this.closed || this.flights.has(call.fullKey)) return;
    const f = this.startFlight(call, mode, undefined);
    const tracked = f.promise.catch((err: unknown) => {
      this.tiers.logger.debug(
        `background refresh of "${call.key}" failed: ${err instanceof Error ? err.message : String(err)}`,
      );
    });
    this.background.add(tracked);
    void tracked.finally(() => this.background.delete(tracked));
  }

  /**
   * Starts the one load of a key. `readFailed` set: the caller has just read Redis and missed (`true`: Redis
   * failed for availability), so the flight does not read it again.
   */
  private startFlight<T>(
    call: Call<T>,
    mode: FlightMode,
    stale: Stale | undefined,
    readFailed?: boolean,
  ): Flight {
    const flight: Flight = {
      promise: undefined as unknown as Promise<CacheLookup<unknown>>,
      profile: call.p.config.name,
      key: call.key,
      mode,
      tags: call.options.tags,
      invalidated: false,
    };
    this.flights.set(call.fullKey, flight);
    flight.promise = this.fly(call, mode, stale, flight, readFailed).finally(() => {
      if (this.flights.get(call.fullKey) === flight) this.flights.delete(call.fullKey);
      if (flight.after) this.refreshInBackground(call, flight.after);
    });
    return flight;
  }

  /** One load of a key: L2, then (optionally) the cross-instance lease, then the loader, then the write. */
  private async fly<T>(
    call: Call<T>,
    mode: FlightMode,
    stale: Stale | undefined,
    flight: Flight,
    readFailed: boolean | undefined,
  ): Promise<CacheLookup<T>> {
    const { p, key, fullKey, options } = call;
    // Once Redis failed this flight for availability, it is not asked again: one dead wait per call, at most.
    let redisDown = readFailed === true;
    if (mode !== 'reload' && readFailed === undefined) {
      const read = await this.tiers.readL2Checked(fullKey);
      redisDown = read.failed;
      const found = read.entry;
      if (found !== undefined) {
        const now = Date.now();
        if (!flight.invalidated) this.tiers.fillL1(p, key, found, now);
        if (mode === 'get') {
          const served = this.serve(call, found, { now, tier: 'l2', flight });
          if (served) return served;
        } else if (now < found.freshUntil) {
          return { value: found.value as T, outcome: 'hit' };
        }
        if (now < found.staleUntil) stale = found;
      }
    }
    if (mode === 'get') p.counters.misses++;

    const lock = options.lock === undefined ? p.config.lock : resolveLock('lock', options.lock);
    let lease: Lease | undefined;
    if (lock && !redisDown && this.tiers.client.isAvailable()) {
      const r = await this.leaseOrWait(call, lock, mode);
      if (r.kind === 'value') {
        this.tiers.fillL1(p, key, r.entry, Date.now());
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
        value = await call.loader();
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
        await this.store(call, value, { delta, redisDown });
      }
      return { value, outcome: 'miss' };
    } finally {
      if (lease) await this.releaseLease(p, key, lease, failed);
    }
  }

  /** Stores a loaded value; a failure to store never fails the call (it is logged once). */
  private async store<T>(call: Call<T>, value: T, how: { delta: number; redisDown: boolean }): Promise<void> {
    try {
      await this.writer.write(call.p, call.key, value, {
        ...call.options,
        delta: how.delta,
        response: call.options.response === true,
        strict: false,
        redisDown: how.redisDown,
      });
    } catch (err) {
      this.tiers.warnOnce(
        `write:${err instanceof Error ? err.name : 'error'}`,
        `value for "${call.key}" was not cached: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  }

  /**
   * Cross-instance single-flight: take the lease (`SET NX PX`) and load, or wait — woken by the winner's
   * invalidation message, polling Redis as a fallback — until the value appears, the lease frees up (then
   * try to take it), or `wait` runs out (then load without it).
   */
  private async leaseOrWait<T>(
    call: Call<T>,
    lock: { ttl: number; wait: number },
    mode: FlightMode,
  ): Promise<LeaseResult> {
    const { p, key, fullKey } = call;
    const tiers = this.tiers;
    const leaseKey = tiers.keys.lease(p.config.name, key);
    const token = `${this.instanceId}:${++this.leaseSeq}`;
    const deadline = Date.now() + lock.wait;
    let delay = 10;
    for (let round = 0; round < 10_000; round++) {
      let taken: boolean;
      try {
        taken = await tiers.redis.acquireLease(leaseKey, token, lock.ttl);
      } catch (err) {
        tiers.onRedisError(err, 'lease');
        return { kind: 'none' };
      }
      if (taken) {
        this.lockCounters.acquired++;
        if (mode === 'get') {
          // Another instance may have stored the value and released the lease since our read.
          const e = await tiers.readL2(fullKey);
          if (e !== undefined && Date.now() < e.freshUntil) {
            await this.releaseLease(p, key, { token, leaseKey }, false);
            this.lockCounters.waitHits++;
            return { kind: 'value', entry: e };
          }
        }
        return { kind: 'lease', token, leaseKey };
      }
      if (mode !== 'get') return { kind: 'busy' };
      if (round === 0) this.lockCounters.waits++;
      const remaining = deadline - Date.now();
      if (remaining <= 0 || this.closed) {
        this.lockCounters.timeouts++;
        return { kind: 'none' };
      }
      await this.waitForWake(fullKey, Math.min(delay, remaining));
      delay = Math.min(delay * 2, 200);
      const e = await tiers.readL2(fullKey);
      if (e !== undefined && Date.now() < e.freshUntil) {
        this.lockCounters.waitHits++;
        return { kind: 'value', entry: e };
      }
      if (!tiers.client.isAvailable()) return { kind: 'none' };
    }
    return { kind: 'none' };
  }

  private async releaseLease(
    p: ProfileRuntime,
    key: string,
    lease: Lease,
    wakeWaiters: boolean,
  ): Promise<void> {
    const tiers = this.tiers;
    const wake =
      wakeWaiters && tiers.bus
        ? {
            channel: tiers.keys.channel,
            body: `0|${JSON.stringify({ o: this.instanceId, l: [[p.config.name, key]] })}`,
          }
        : null;
    try {
      const r = await tiers.redis.releaseLease(lease.leaseKey, lease.token, wake);
      if (r === -1) this.lockCounters.lost++;
    } catch (err) {
      tiers.onRedisError(err, 'lease');
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

  private recordLoad(p: ProfileRuntime, ms: number): void {
    this.loadSamples[this.loadCount++ % LOAD_SAMPLES] = ms;
    this.onLoad(p.config.name, ms);
  }
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}
