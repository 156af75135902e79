import type { BreakerState, RedisBreakerOptions } from './redis.interfaces';

/** What `tryAcquire()` decided for one call. */
export enum Admission {
  Rejected = 0,
  /** A normal call in the closed (or forced-closed) state. */
  Allowed = 1,
  /** The single call let through in half-open; its outcome decides the next state. */
  Probe = 2,
}

export interface BreakerTransition {
  previous: BreakerState;
  current: BreakerState;
  reason: string;
}

const BUCKETS = 10;

/**
 * Count-based circuit breaker over a rolling time window.
 *
 * Closed: calls pass; outcomes land in `BUCKETS` time slices covering `window` ms. Once the window holds
 * `minimumVolume` calls, a failure rate or slow-call rate at or above its threshold opens the breaker.
 * Open: calls are rejected until a jittered `resetTimeout` has passed; the first call after that is the
 * single probe (half-open) and everyone else is still rejected. The probe's outcome closes or re-opens the
 * breaker; a probe unanswered for `maxHalfOpenTime` re-opens it.
 *
 * No timers: every transition happens lazily inside a call, so an idle breaker costs nothing and leaves
 * nothing to clean up on shutdown.
 */
export class CircuitBreaker {
  private state: BreakerState = 'closed';
  private readonly calls = new Uint32Array(BUCKETS);
  private readonly failures = new Uint32Array(BUCKETS);
  private readonly slow = new Uint32Array(BUCKETS);
  /** Absolute slice number (time / sliceMs) of the newest slice that was written. */
  private headSlice = 0;
  private readonly sliceMs: number;
  private nextAttemptAt = 0;
  private probeStartedAt = 0;
  private probeInFlight = false;
  private openedCount = 0;
  private rejectedCount = 0;

  constructor(
    private readonly options: Required<RedisBreakerOptions>,
    private readonly onTransition: (t: BreakerTransition) => void = () => undefined,
    /** Any monotonic millisecond clock; the Redis client passes `performance.now`. */
    private readonly now: () => number = Date.now,
    private readonly random: () => number = Math.random,
  ) {
    this.sliceMs = Math.max(1, Math.ceil(options.window / BUCKETS));
  }

  /** Current state (lazily moves open → half-open only on a call, so this may still say `open`). */
  getState(): BreakerState {
    return this.state;
  }

  /** Times the breaker has opened (including forced opens), and calls it rejected. */
  getCounts(): { opened: number; rejected: number } {
    return { opened: this.openedCount, rejected: this.rejectedCount };
  }

  /** Whether a call made now would be admitted, without consuming the half-open probe. */
  wouldAdmit(): boolean {
    switch (this.state) {
      case 'closed':
      case 'forced-closed':
        return true;
      case 'open':
        return this.now() >= this.nextAttemptAt;
      case 'half-open':
        return !this.probeInFlight || this.now() - this.probeStartedAt >= this.options.maxHalfOpenTime;
      default:
        return false;
    }
  }

  /** Decide whether a call may go to Redis. Must be followed by `record()` unless it returns `Rejected`. */
  tryAcquire(): Admission {
    const state = this.state;
    if (state === 'closed' || state === 'forced-closed') return Admission.Allowed;
    if (state === 'forced-open') return this.reject();
    if (!this.options.enabled) return Admission.Allowed;
    const now = this.now();
    if (state === 'open') {
      if (now < this.nextAttemptAt) return this.reject();
      this.transition('half-open', 'reset timeout elapsed');
    } else if (this.probeInFlight) {
      if (now - this.probeStartedAt < this.options.maxHalfOpenTime) return this.reject();
      this.open('probe unanswered for maxHalfOpenTime', now);
      return this.reject();
    }
    this.probeInFlight = true;
    this.probeStartedAt = now;
    return Admission.Probe;
  }

  /**
   * Record the outcome of an admitted call.
   * @param failed the call failed for an availability reason (timeout, connection), not a Redis reply error
   * @param durationMs how long it took
   * @param now the breaker clock at completion, when the caller has just read it
   */
  record(admission: Admission, failed: boolean, durationMs: number, now: number = this.now()): void {
    if (admission === Admission.Probe) {
      this.probeInFlight = false;
      if (this.state !== 'half-open') return;
      if (failed || durationMs >= this.options.slowCallDuration) {
        this.open(failed ? 'probe failed' : 'probe was slow', now);
      } else {
        this.close('probe succeeded');
      }
      return;
    }
    if (this.state !== 'closed' || !this.options.enabled) return;
    const i = this.slot(now);
    this.calls[i]++;
    if (failed) this.failures[i]++;
    if (durationMs >= this.options.slowCallDuration) this.slow[i]++;
    if (failed || durationMs >= this.options.slowCallDuration) this.evaluate(now);
  }

  /**
   * The connection became ready again: skip the rest of the open wait so the next call probes at once.
   * Recovery then takes one round trip instead of up to `resetTimeout`.
   */
  connectionRestored(): void {
    if (this.state === 'open') this.nextAttemptAt = this.now();
  }

  /** Open now and stay open until `release()`. Every call fails fast. */
  forceOpen(): void {
    this.openedCount++;
    this.transition('forced-open', 'forced open by operator');
  }

  /** Stay closed until `release()`, whatever the failure rate. */
  forceClose(): void {
    this.transition('forced-closed', 'forced closed by operator');
  }

  /** Leave a forced state and resume automatic operation from closed. */
  release(): void {
    if (this.state === 'forced-open' || this.state === 'forced-closed') this.close('released by operator');
  }

  private reject(): Admission {
    this.rejectedCount++;
    return Admission.Rejected;
  }

  private evaluate(now: number): void {
    let calls = 0;
    let failures = 0;
    let slow = 0;
    this.slot(now);
    for (let i = 0; i < BUCKETS; i++) {
      calls += this.calls[i];
      failures += this.failures[i];
      slow += this.slow[i];
    }
    if (calls < this.options.minimumVolume) return;
    const failureRate = (failures * 100) / calls;
    const slowRate = (slow * 100) / calls;
    if (failureRate >= this.options.failureRateThreshold) {
      this.open(`failure rate ${failureRate.toFixed(0)}% over ${calls} calls`, now);
    } else if (slowRate >= this.options.slowCallRateThreshold) {
      this.open(`slow-call rate ${slowRate.toFixed(0)}% over ${calls} calls`, now);
    }
  }

  /** Index of the slice for `now`, zeroing slices that fell out of the window since the last write. */
  private slot(now: number): number {
    const slice = Math.floor(now / this.sliceMs);
    const gap = slice - this.headSlice;
    if (gap > 0) {
      const clear = Math.min(gap, BUCKETS);
      for (let k = 1; k <= clear; k++) {
        const j = (this.headSlice + k) % BUCKETS;
        this.calls[j] = 0;
        this.failures[j] = 0;
        this.slow[j] = 0;
      }
      this.headSlice = slice;
    }
    return this.headSlice % BUCKETS;
  }

  private open(reason: string, now: number): void {
    const { resetTimeout, resetJitter } = this.options;
    const jitter = resetTimeout * resetJitter * (this.random() * 2 - 1);
    this.nextAttemptAt = now + Math.max(0, Math.round(resetTimeout + jitter));
    this.probeInFlight = false;
    this.openedCount++;
    this.transition('open', reason);
  }

  private close(reason: string): void {
    this.calls.fill(0);
    this.failures.fill(0);
    this.slow.fill(0);
    this.probeInFlight = false;
    this.transition('closed', reason);
  }

  private transition(current: BreakerState, reason: string): void {
    const previous = this.state;
    if (previous === current) return;
    this.state = current;
    this.onTransition({ previous, current, reason });
  }
}
