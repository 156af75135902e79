import type { MetricsRegistry } from '@redwing/redis';

/** Outcome label of an acquisition. */
export type AcquireOutcome = 'acquired' | 'busy' | 'unavailable';

interface Observer {
  observe(value: number): void;
}
interface Incrementer {
  inc(value?: number): void;
}

const WAIT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const HOLD_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300];

/**
 * The lock's Prometheus metrics (when `MetricsModule` provides `REDWING_METRICS`):
 * - `redwing_lock_acquisitions_total{outcome}`: acquired | busy (gave up after the wait) | unavailable;
 * - `redwing_lock_wait_seconds{outcome}`: time from the call to the grant or the give-up;
 * - `redwing_lock_hold_seconds`: time from grant to release (or loss);
 * - `redwing_lock_lost_total{reason}`: leases lost while held (expired | taken | extend-failed);
 * - `redwing_lock_leader_changes_total{change}`: elected | revoked, over every election of the process;
 * - `redwing_lock_leader_state{election}`: 1 while this instance leads that election (names come from code);
 * - `redwing_lock_refused_subscriptions_current`: release channels (one per authority) whose SUBSCRIBE Redis
 *   refuses (an ACL without the channel); their waiters poll at `retryInterval`; it is sent again until accepted.
 * Label children are created once: a grant costs two `observe`/`inc` calls.
 */
export class LockMetrics {
  private readonly acquired: Record<AcquireOutcome, Incrementer | undefined> = {
    acquired: undefined,
    busy: undefined,
    unavailable: undefined,
  };
  private readonly waits: Record<AcquireOutcome, Observer | undefined> = {
    acquired: undefined,
    busy: undefined,
    unavailable: undefined,
  };
  private hold?: Observer;
  private lost?: (reason: string) => Incrementer;
  private changes?: (change: 'elected' | 'revoked') => Incrementer;

  constructor(
    metrics: MetricsRegistry | undefined,
    leaderStates: () => Map<string, boolean>,
    refusedSubscriptions: () => number = () => 0,
  ) {
    if (!metrics) return;
    metrics.gauge({
      name: 'redwing_lock_refused_subscriptions_current',
      help: 'Release channels whose SUBSCRIBE Redis refuses (ACL): waiters poll at retryInterval instead of waking',
      collect() {
        this.set(refusedSubscriptions());
      },
    });
    const acquisitions = metrics.counter({
      name: 'redwing_lock_acquisitions_total',
      help: 'Lock acquisitions by outcome: acquired, busy (held by another until the wait ran out), unavailable (Redis failed; never granted)',
      labelNames: ['outcome'],
    });
    const wait = metrics.histogram({
      name: 'redwing_lock_wait_seconds',
      help: 'Time from acquire() to the grant or the give-up, by outcome',
      labelNames: ['outcome'],
      buckets: WAIT_BUCKETS,
    });
    for (const outcome of ['acquired', 'busy', 'unavailable'] as const) {
      this.acquired[outcome] = acquisitions.labels(outcome);
      this.waits[outcome] = wait.labels(outcome);
    }
    this.hold = metrics.histogram({
      name: 'redwing_lock_hold_seconds',
      help: 'Time a lock was held, from grant to release or loss',
      buckets: HOLD_BUCKETS,
    });
    const lost = metrics.counter({
      name: 'redwing_lock_lost_total',
      help: 'Leases lost while held, by reason: expired, taken, extend-failed',
      labelNames: ['reason'],
    });
    this.lost = (reason) => lost.labels(reason);
    const changes = metrics.counter({
      name: 'redwing_lock_leader_changes_total',
      help: 'Leadership changes of this instance over all its elections: elected, revoked',
      labelNames: ['change'],
    });
    this.changes = (change) => changes.labels(change);
    metrics.gauge({
      name: 'redwing_lock_leader_state',
      help: '1 while this instance leads the election, else 0',
      labelNames: ['election'],
      collect() {
        for (const [name, leading] of leaderStates()) this.set({ election: name }, leading ? 1 : 0);
      },
    });
  }

  /** One acquisition settled after `seconds`. */
  acquisition(outcome: AcquireOutcome, seconds: number): void {
    this.acquired[outcome]?.inc();
    this.waits[outcome]?.observe(seconds);
  }

  held(seconds: number): void {
    this.hold?.observe(seconds);
  }

  leaseLost(reason: string): void {
    this.lost?.(reason).inc();
  }

  leaderChange(change: 'elected' | 'revoked'): void {
    this.changes?.(change).inc();
  }
}
