import type { MetricsRegistry } from '@redwing/redis';

/** Outcome label of a consume decision. */
export type DecisionResult = 'allowed' | 'denied' | 'shadowed' | 'unavailable';
type Mode = 'redis' | 'local' | 'bypass';

interface Incrementable {
  inc(): void;
}

/**
 * The rate limiter's Prometheus metrics, defined on the `REDWING_METRICS` registry when the app has one
 * (`@redwing/metrics`' `MetricsModule` provides it):
 * - `redwing_ratelimit_decisions_total{result,mode}`: consume decisions; result allowed|denied|shadowed|
 *   unavailable, mode redis|local|bypass;
 * - `redwing_ratelimit_store_switches_total{to}`: switches between Redis and the in-memory limiter;
 * - `redwing_ratelimit_fallback_state`: 1 while limits are enforced in memory;
 * - `redwing_ratelimit_local_entries_current`: entries in the in-memory table.
 * Children are created once, so counting costs one `inc()` on the hot path.
 */
export class RateLimitMetrics {
  private readonly decisions: Partial<Record<DecisionResult, Record<Mode, Incrementable>>> = {};
  private readonly switches: Partial<Record<'local' | 'redis', Incrementable>> = {};

  constructor(metrics: MetricsRegistry | undefined, state: { local: () => boolean; entries: () => number }) {
    if (!metrics) return;
    const decisions = metrics.counter({
      name: 'redwing_ratelimit_decisions_total',
      help: 'Rate-limit decisions by result (allowed, denied, shadowed, unavailable) and store (redis, local, bypass)',
      labelNames: ['result', 'mode'],
    });
    for (const result of ['allowed', 'denied', 'shadowed', 'unavailable'] as const) {
      this.decisions[result] = {
        redis: decisions.labels(result, 'redis'),
        local: decisions.labels(result, 'local'),
        bypass: decisions.labels(result, 'bypass'),
      };
    }
    const switches = metrics.counter({
      name: 'redwing_ratelimit_store_switches_total',
      help: 'Switches of the rate limiter between Redis and the in-memory insurance limiter, by target',
      labelNames: ['to'],
    });
    this.switches.local = switches.labels('local');
    this.switches.redis = switches.labels('redis');
    metrics.gauge({
      name: 'redwing_ratelimit_fallback_state',
      help: '1 while rate limits are enforced by the in-memory insurance limiter (Redis unavailable), else 0',
      collect() {
        this.set(state.local() ? 1 : 0);
      },
    });
    metrics.gauge({
      name: 'redwing_ratelimit_local_entries_current',
      help: 'Entries in the bounded in-memory rate-limit table',
      collect() {
        this.set(state.entries());
      },
    });
  }

  decision(result: DecisionResult, mode: Mode): void {
    this.decisions[result]?.[mode].inc();
  }

  switched(to: 'local' | 'redis'): void {
    this.switches[to]?.inc();
  }
}
