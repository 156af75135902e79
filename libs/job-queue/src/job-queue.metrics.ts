import type { MetricsRegistry } from '@redwing/redis';
import type { JobCounts, JobWorkerHealth } from './job-queue.interfaces';

/** Job outcome label. */
export type JobOutcome = 'completed' | 'failed' | 'retried' | 'dead-lettered' | 'stalled';

interface Child {
  inc(value?: number): void;
}
interface Observer {
  observe(value: number): void;
}

/**
 * The job queue's Prometheus metrics, on the `REDWING_METRICS` registry when the app has one:
 * - `redwing_job_queue_jobs_current{queue,state}`: depth per state (waiting, active, delayed, prioritized, paused,
 *   waiting-children, completed, failed, dead-lettered = the DLQ size), read from Redis at each scrape;
 * - `redwing_job_queue_enqueued_total{queue,result}`: adds, result accepted|rejected (fail-closed refusals);
 * - `redwing_job_queue_processed_total{queue,outcome}`: attempts that ended completed|failed (final)|retried,
 *   jobs dead-lettered, and stalled jobs recovered by this instance's stall checker;
 * - `redwing_job_queue_job_duration_seconds{queue}`: handler run time; `redwing_job_queue_wait_seconds{queue}`:
 *   time from enqueue (or due time) to start;
 * - `redwing_job_queue_workers_current{queue,state}`: this instance's workers per state (running, reconnecting,
 *   stopped); `redwing_job_queue_worker_recoveries_total{queue}`: times a worker fetched again after its Redis
 *   connection was lost.
 * Queue names are the only label values besides fixed words, so the label set is bounded by the app.
 */
export class JobQueueMetrics {
  private readonly enqueued = new Map<string, Record<'accepted' | 'rejected', Child>>();
  private readonly outcomes = new Map<string, Record<JobOutcome, Child>>();
  private readonly durations = new Map<string, Observer>();
  private readonly waits = new Map<string, Observer>();
  private readonly registry?: ReturnType<typeof define>;

  constructor(
    metrics: MetricsRegistry | undefined,
    counts: () => Promise<Map<string, JobCounts>>,
    workers: () => JobWorkerHealth[] = () => [],
  ) {
    if (metrics) this.registry = define(metrics, counts, workers);
  }

  /** A worker's Redis came back after it was lost. */
  recovered(queue: string): void {
    this.registry?.recoveries.labels(queue).inc();
  }

  enqueue(queue: string, result: 'accepted' | 'rejected', n = 1): void {
    if (!this.registry) return;
    let children = this.enqueued.get(queue);
    if (!children) {
      const c = this.registry.enqueued;
      children = { accepted: c.labels(queue, 'accepted'), rejected: c.labels(queue, 'rejected') };
      this.enqueued.set(queue, children);
    }
    children[result].inc(n);
  }

  outcome(queue: string, outcome: JobOutcome): void {
    if (!this.registry) return;
    let children = this.outcomes.get(queue);
    if (!children) {
      const c = this.registry.processed;
      children = {
        completed: c.labels(queue, 'completed'),
        failed: c.labels(queue, 'failed'),
        retried: c.labels(queue, 'retried'),
        'dead-lettered': c.labels(queue, 'dead-lettered'),
        stalled: c.labels(queue, 'stalled'),
      };
      this.outcomes.set(queue, children);
    }
    children[outcome].inc();
  }

  /** Handler run time and wait before start, in ms. */
  timing(queue: string, runMs: number, waitMs: number): void {
    if (!this.registry) return;
    let d = this.durations.get(queue);
    let w = this.waits.get(queue);
    if (!d || !w) {
      d = this.registry.duration.labels(queue);
      w = this.registry.wait.labels(queue);
      this.durations.set(queue, d);
      this.waits.set(queue, w);
    }
    d.observe(runMs / 1000);
    if (waitMs >= 0) w.observe(waitMs / 1000);
  }
}

function define(
  metrics: MetricsRegistry,
  counts: () => Promise<Map<string, JobCounts>>,
  workers: () => JobWorkerHealth[],
) {
  metrics.gauge({
    name: 'redwing_job_queue_workers_current',
    help: "This instance's workers per queue and state (running, reconnecting, stopped)",
    labelNames: ['queue', 'state'],
    collect() {
      const states = ['running', 'reconnecting', 'stopped'] as const;
      const n = new Map<string, number>();
      const list = workers();
      for (const w of list) n.set(`${w.queue}\0${w.state}`, (n.get(`${w.queue}\0${w.state}`) ?? 0) + 1);
      for (const queue of new Set(list.map((w) => w.queue))) {
        for (const state of states) this.set({ queue, state }, n.get(`${queue}\0${state}`) ?? 0);
      }
    },
  });
  metrics.gauge({
    name: 'redwing_job_queue_jobs_current',
    help: 'Jobs per queue and state (dead-lettered = dead-letter queue size), read from Redis at scrape time',
    labelNames: ['queue', 'state'],
    async collect() {
      let all: Map<string, JobCounts>;
      try {
        all = await counts();
      } catch {
        return; // Redis down: keep the last values rather than fail the scrape
      }
      for (const [queue, byState] of all) {
        for (const [state, n] of Object.entries(byState)) this.set({ queue, state }, n);
      }
    },
  });
  return {
    recoveries: metrics.counter({
      name: 'redwing_job_queue_worker_recoveries_total',
      help: 'Times a worker fetched again (a job, or found the queue empty) after its Redis connection was lost',
      labelNames: ['queue'],
    }),
    enqueued: metrics.counter({
      name: 'redwing_job_queue_enqueued_total',
      help: 'Jobs added, by result (accepted, rejected = refused while the queue Redis was unavailable)',
      labelNames: ['queue', 'result'],
    }),
    processed: metrics.counter({
      name: 'redwing_job_queue_processed_total',
      help: 'Job attempts by outcome (completed, retried, failed = final), dead-lettered jobs, stalled jobs recovered',
      labelNames: ['queue', 'outcome'],
    }),
    duration: metrics.histogram({
      name: 'redwing_job_queue_job_duration_seconds',
      help: 'Time a job handler ran, per attempt',
      labelNames: ['queue'],
      buckets: [0.001, 0.005, 0.025, 0.1, 0.5, 1, 5, 30, 120],
    }),
    wait: metrics.histogram({
      name: 'redwing_job_queue_wait_seconds',
      help: 'Time from a job being due (added, or its delay over) to its handler starting',
      labelNames: ['queue'],
      buckets: [0.001, 0.005, 0.025, 0.1, 0.5, 1, 5, 30, 120, 600],
    }),
  };
}
