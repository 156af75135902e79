import type { CounterMetric, HistogramMetric, MetricsRegistry } from '@redwing/redis';
import type { CacheL1Stats } from './cache.interfaces';

/** The counters one profile keeps on the hot path (plain numbers: a hit costs an increment). */
export interface ProfileCounters {
  l1Hits: number;
  l2Hits: number;
  misses: number;
  stale: number;
  staleIfError: number;
  loads: number;
  loadErrors: number;
  coalesced: number;
}

/** What the metrics export reads from the service. */
export interface MetricsSource {
  profiles(): Iterable<{ name: string; counters: ProfileCounters; l1: CacheL1Stats | null }>;
  invalidation(): { published: number; received: number; flushes: number };
  l2Errors(): number;
}

type Counter = CounterMetric;

/**
 * Exports the cache's counters to Prometheus (`redwing_cache_*`). The hot path only bumps plain numbers;
 * the differences are added to the Prometheus counters when the registry is scraped (from a gauge's
 * `collect`, which runs before the counters are read) and at least every second.
 */
export class CacheMetrics {
  private readonly hits: Counter;
  private readonly misses: Counter;
  private readonly stale: Counter;
  private readonly loads: Counter;
  private readonly coalesced: Counter;
  private readonly evictions: Counter;
  private readonly invalidations: Counter;
  private readonly flushes: Counter;
  private readonly l2Errors: Counter;
  private readonly loadTime: HistogramMetric;
  private readonly seen = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    registry: MetricsRegistry,
    private readonly source: MetricsSource,
  ) {
    const sync = () => this.sync();
    // Gauges first: their collect() syncs the counters before the registry reads them.
    registry.gauge({
      name: 'redwing_cache_l1_entries_current',
      help: 'Entries in the in-process cache tier (L1)',
      labelNames: ['profile'],
      collect() {
        sync();
        for (const p of source.profiles()) if (p.l1) this.set({ profile: p.name }, p.l1.entries);
      },
    });
    registry.gauge({
      name: 'redwing_cache_l1_bytes',
      help: 'Bytes held by the in-process cache tier (L1)',
      labelNames: ['profile'],
      collect() {
        for (const p of source.profiles()) if (p.l1) this.set({ profile: p.name }, p.l1.bytes);
      },
    });
    registry.gauge({
      name: 'redwing_cache_hit_ratio',
      help: 'Fresh hits over lookups since start',
      labelNames: ['profile'],
      collect() {
        for (const p of source.profiles()) {
          const c = p.counters;
          const lookups = c.l1Hits + c.l2Hits + c.misses + c.stale;
          if (lookups > 0) this.set({ profile: p.name }, (c.l1Hits + c.l2Hits) / lookups);
        }
      },
    });
    this.hits = registry.counter({
      name: 'redwing_cache_hits_total',
      help: 'Cache lookups answered fresh, by tier',
      labelNames: ['tier', 'profile'],
    });
    this.misses = registry.counter({
      name: 'redwing_cache_misses_total',
      help: 'Cache lookups that found nothing usable',
      labelNames: ['profile'],
    });
    this.stale = registry.counter({
      name: 'redwing_cache_stale_total',
      help: 'Stale values served (stale-while-revalidate or stale-if-error)',
      labelNames: ['profile', 'reason'],
    });
    this.loads = registry.counter({
      name: 'redwing_cache_loads_total',
      help: 'Loader calls, by outcome',
      labelNames: ['profile', 'outcome'],
    });
    this.coalesced = registry.counter({
      name: 'redwing_cache_coalesced_total',
      help: 'Callers that joined a load already in flight',
      labelNames: ['profile'],
    });
    this.evictions = registry.counter({
      name: 'redwing_cache_l1_evictions_total',
      help: 'Entries evicted from L1 to stay within its bounds',
      labelNames: ['profile'],
    });
    this.invalidations = registry.counter({
      name: 'redwing_cache_invalidations_total',
      help: 'Invalidation messages published and received',
      labelNames: ['direction'],
    });
    this.flushes = registry.counter({
      name: 'redwing_cache_l1_flushes_total',
      help: 'Times L1 was emptied because invalidation messages may have been missed',
    });
    this.l2Errors = registry.counter({
      name: 'redwing_cache_l2_errors_total',
      help: 'Redis reads and writes that failed for availability and were served around',
    });
    this.loadTime = registry.histogram({
      name: 'redwing_cache_load_duration_seconds',
      help: 'Loader duration',
      labelNames: ['profile'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    });
    this.timer = setInterval(sync, 1_000);
    this.timer.unref();
  }

  /** One loader call took `ms`. */
  observeLoad(profile: string, ms: number): void {
    this.loadTime.observe({ profile }, ms / 1_000);
  }

  /** Adds what changed since the last call to the Prometheus counters. */
  sync(): void {
    for (const p of this.source.profiles()) {
      const c = p.counters;
      const profile = p.name;
      this.add(this.hits, `h1:${profile}`, c.l1Hits, { tier: 'l1', profile });
      this.add(this.hits, `h2:${profile}`, c.l2Hits, { tier: 'l2', profile });
      this.add(this.misses, `m:${profile}`, c.misses, { profile });
      this.add(this.stale, `sr:${profile}`, c.stale - c.staleIfError, { profile, reason: 'revalidate' });
      this.add(this.stale, `se:${profile}`, c.staleIfError, { profile, reason: 'error' });
      this.add(this.loads, `lo:${profile}`, c.loads - c.loadErrors, { profile, outcome: 'ok' });
      this.add(this.loads, `le:${profile}`, c.loadErrors, { profile, outcome: 'error' });
      this.add(this.coalesced, `c:${profile}`, c.coalesced, { profile });
      if (p.l1) this.add(this.evictions, `ev:${profile}`, p.l1.evictions, { profile });
    }
    const inv = this.source.invalidation();
    this.add(this.invalidations, 'ip', inv.published, { direction: 'published' });
    this.add(this.invalidations, 'ir', inv.received, { direction: 'received' });
    this.add(this.flushes, 'fl', inv.flushes, {});
    this.add(this.l2Errors, 'l2e', this.source.l2Errors(), {});
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private add(counter: Counter, id: string, total: number, labels: Record<string, string>): void {
    const delta = total - (this.seen.get(id) ?? 0);
    if (delta > 0) {
      counter.inc(labels, delta);
      this.seen.set(id, total);
    }
  }
}
