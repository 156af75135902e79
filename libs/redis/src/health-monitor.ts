import type { RedisHealthCheckOptions } from './redis.interfaces';

export interface HealthSnapshot {
  /** Outcome of the last check; null before the first one. */
  lastOk: boolean | null;
  latencyMs: number | null;
  consecutiveFailures: number;
  consecutiveSuccesses: number;
  /** Share of the last `sampleSize` checks that passed / failed, 0–1 (0 before the first check). */
  successRate: number;
  failureRate: number;
  lastError: string | null;
  checkedAt: number | null;
}

/**
 * Periodic PING of one connection: latency, consecutive failures and successes, and success/failure rates
 * over the last `sampleSize` checks. One check at a time; the interval timer is unref'd and stopped by
 * `stop()`.
 */
export class HealthMonitor {
  private timer?: NodeJS.Timeout;
  private inFlight?: Promise<boolean>;
  private readonly samples: boolean[] = [];
  private snapshot: HealthSnapshot = {
    lastOk: null,
    latencyMs: null,
    consecutiveFailures: 0,
    consecutiveSuccesses: 0,
    successRate: 0,
    failureRate: 0,
    lastError: null,
    checkedAt: null,
  };

  constructor(
    private readonly options: Required<RedisHealthCheckOptions>,
    private readonly ping: () => Promise<unknown>,
    private readonly onCheck: (snapshot: HealthSnapshot) => void,
    private readonly describeError: (err: unknown) => string = (err) => String(err),
  ) {}

  start(): void {
    if (this.timer || this.options.interval <= 0) return;
    this.timer = setInterval(() => void this.check(), this.options.interval);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  get(): HealthSnapshot {
    return this.snapshot;
  }

  /** Run one check now (joins the one in flight, if any). Resolves to whether it passed. */
  check(): Promise<boolean> {
    this.inFlight ??= this.runCheck().finally(() => (this.inFlight = undefined));
    return this.inFlight;
  }

  /** Record a failure seen elsewhere (the connection dropped) without waiting for the next PING. */
  markFailed(reason: string): void {
    this.record(false, null, reason);
  }

  private async runCheck(): Promise<boolean> {
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.ping(),
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`PING took longer than ${this.options.timeout} ms`)),
            this.options.timeout,
          );
        }),
      ]);
      this.record(true, performance.now() - started, null);
      return true;
    } catch (err) {
      this.record(false, null, this.describeError(err));
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  private record(ok: boolean, latencyMs: number | null, error: string | null): void {
    this.samples.push(ok);
    if (this.samples.length > this.options.sampleSize) this.samples.shift();
    const passed = this.samples.reduce((n, s) => n + (s ? 1 : 0), 0);
    const prev = this.snapshot;
    this.snapshot = {
      lastOk: ok,
      latencyMs: ok ? Math.round(latencyMs! * 100) / 100 : prev.latencyMs,
      consecutiveFailures: ok ? 0 : prev.consecutiveFailures + 1,
      consecutiveSuccesses: ok ? prev.consecutiveSuccesses + 1 : 0,
      successRate: passed / this.samples.length,
      failureRate: 1 - passed / this.samples.length,
      lastError: ok ? prev.lastError : error,
      checkedAt: Date.now(),
    };
    this.onCheck(this.snapshot);
  }
}
