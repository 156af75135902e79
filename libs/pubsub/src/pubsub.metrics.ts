import type { CounterMetric, MetricsRegistry } from '@redwing/redis';
import type { PubSubStats } from './pubsub.interfaces';

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];

/**
 * Counters of one `PubSubService`, exported as `redwing_pubsub_*` when a metrics registry is present. The
 * hot path bumps plain numbers; the Prometheus counters catch up at scrape time (a gauge's `collect` runs
 * before the counters are read).
 */
export class PubSubMetrics {
  readonly counts = {
    publishedEphemeral: 0,
    publishedResumable: 0,
    delivered: 0,
    reconnects: 0,
    catchUps: 0,
    resyncs: 0,
    dropped: {} as Record<string, number>,
  };
  private readonly latency?: { observe(value: number): void };
  private readonly seen = new Map<string, number>();
  private counters?: Record<'published' | 'delivered' | 'reconnects' | 'resyncs' | 'dropped', CounterMetric>;

  constructor(
    metrics: MetricsRegistry | undefined,
    buffered: () => number,
    up: () => boolean,
    refused: () => number,
  ) {
    if (!metrics) return;
    const counter = (name: string, help: string, labelNames: string[] = []) =>
      metrics.counter({ name, help, labelNames });
    const sync = () => this.sync();
    metrics.gauge({
      name: 'redwing_pubsub_subscriber_state',
      help: '1 while the subscriber connection is subscribed, 0 while degraded',
      collect() {
        sync();
        this.set(up() ? 1 : 0);
      },
    });
    metrics.gauge({
      name: 'redwing_pubsub_offline_buffered_current',
      help: 'Resumable events waiting for Redis to come back',
      collect() {
        this.set(buffered());
      },
    });
    metrics.gauge({
      name: 'redwing_pubsub_refused_subscriptions_current',
      help: 'Channels and patterns whose SUBSCRIBE Redis refuses (ACL); retried until accepted',
      collect() {
        this.set(refused());
      },
    });
    this.counters = {
      published: counter('redwing_pubsub_published_total', 'Events published by this instance', ['tier']),
      delivered: counter('redwing_pubsub_delivered_total', 'Deliveries to local handlers'),
      reconnects: counter(
        'redwing_pubsub_subscriber_reconnects_total',
        'Re-subscriptions after the subscriber connection came back',
      ),
      resyncs: counter(
        'redwing_pubsub_resyncs_total',
        'resync-required deliveries (a gap older than retention)',
      ),
      dropped: counter(
        'redwing_pubsub_dropped_total',
        'Events dropped: offline-buffer-full, redis-unavailable (ephemeral, remote part), handler-error',
        ['reason'],
      ),
    };
    this.latency = metrics.histogram({
      name: 'redwing_pubsub_delivery_latency_seconds',
      help: 'Publish (publisher clock) to local delivery, once per message and instance',
      buckets: LATENCY_BUCKETS,
    });
  }

  drop(reason: string, n = 1): void {
    this.counts.dropped[reason] = (this.counts.dropped[reason] ?? 0) + n;
  }

  observeLatency(publishedAt: number): void {
    this.latency?.observe(Math.max(0, Date.now() - publishedAt) / 1_000);
  }

  snapshot(state: PubSubStats['state'], buffered: number, refused: string[]): PubSubStats {
    const c = this.counts;
    return {
      state,
      published: { ephemeral: c.publishedEphemeral, resumable: c.publishedResumable },
      delivered: c.delivered,
      buffered,
      dropped: { ...c.dropped },
      subscriberReconnects: c.reconnects,
      catchUps: c.catchUps,
      resyncs: c.resyncs,
      refused,
    };
  }

  /** Adds what changed since the last call to the Prometheus counters. */
  private sync(): void {
    const m = this.counters;
    if (!m) return;
    const c = this.counts;
    this.add(m.published, 'pe', c.publishedEphemeral, { tier: 'ephemeral' });
    this.add(m.published, 'pr', c.publishedResumable, { tier: 'resumable' });
    this.add(m.delivered, 'd', c.delivered, {});
    this.add(m.reconnects, 'r', c.reconnects, {});
    this.add(m.resyncs, 'rs', c.resyncs, {});
    for (const [reason, n] of Object.entries(c.dropped)) this.add(m.dropped, `x:${reason}`, n, { reason });
  }

  private add(counter: CounterMetric, id: string, total: number, labels: Record<string, string>): void {
    const delta = total - (this.seen.get(id) ?? 0);
    if (delta > 0) {
      counter.inc(labels, delta);
      this.seen.set(id, total);
    }
  }
}
