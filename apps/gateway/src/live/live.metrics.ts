import type { CounterMetric, MetricsRegistry } from '@redwing/redis';

/** Why the live endpoint refused or dropped something (the `reason` label; bounded). */
export type LiveDropReason =
  'origin' | 'unauthorized' | 'auth-unavailable' | 'rate-limited' | 'slow-consumer' | 'session-revoked';

/**
 * `redwing_live_*` metrics: sockets connected, messages in and out, drops by reason. Counts are plain numbers
 * (also read by the tests and `/live/stats`), added to the Prometheus counters at scrape time.
 */
export class LiveMetrics {
  readonly counts = { connections: 0, in: 0, out: 0, dropped: {} as Record<string, number> };
  private readonly seen = new Map<string, number>();
  private counters?: { messages: CounterMetric; dropped: CounterMetric; connections: CounterMetric };

  constructor(registry: MetricsRegistry | undefined, sockets: () => number) {
    if (!registry) return;
    const sync = () => this.sync();
    registry.gauge({
      name: 'redwing_live_sockets_current',
      help: 'WebSocket clients connected to /live on this instance',
      collect() {
        sync();
        this.set(sockets());
      },
    });
    this.counters = {
      messages: registry.counter({
        name: 'redwing_live_messages_total',
        help: 'Messages on /live: in = from clients, out = events delivered to sockets',
        labelNames: ['direction'],
      }),
      dropped: registry.counter({
        name: 'redwing_live_dropped_total',
        help: 'Handshakes refused, messages throttled and sockets dropped on /live, by reason',
        labelNames: ['reason'],
      }),
      connections: registry.counter({
        name: 'redwing_live_connections_total',
        help: 'Sockets accepted on /live',
      }),
    };
  }

  connected(): void {
    this.counts.connections++;
  }

  message(direction: 'in' | 'out', n = 1): void {
    this.counts[direction] += n;
  }

  drop(reason: LiveDropReason): void {
    this.counts.dropped[reason] = (this.counts.dropped[reason] ?? 0) + 1;
  }

  private sync(): void {
    const m = this.counters;
    if (!m) return;
    this.add(m.messages, 'in', this.counts.in, { direction: 'in' });
    this.add(m.messages, 'out', this.counts.out, { direction: 'out' });
    this.add(m.connections, 'c', this.counts.connections, {});
    for (const [reason, n] of Object.entries(this.counts.dropped))
      this.add(m.dropped, `d:${reason}`, n, { reason });
  }

  private add(counter: CounterMetric, id: string, total: number, labels: Record<string, string>): void {
    const delta = total - (this.seen.get(id) ?? 0);
    if (delta > 0) {
      counter.inc(labels, delta);
      this.seen.set(id, total);
    }
  }
}
