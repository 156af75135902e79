import fc from 'fast-check';

/**
 * The reference a sliding-window limiter is checked against: every admitted request is kept forever with its
 * time and cost, and a request at `now` is admitted iff the costs admitted in (now - duration, now] plus its
 * own are at most `points`. No trimming, no per-point expansion — obviously right, and slow.
 */
export class SlidingLogModel {
  private readonly admitted: Array<{ at: number; cost: number }> = [];

  constructor(
    private readonly points: number,
    private readonly duration: number,
  ) {}

  consume(now: number, cost: number) {
    const state = this.check(now, cost);
    if (state.allowed) this.admitted.push({ at: now, cost });
    return { ...state, ...this.after(now) };
  }

  peek(now: number) {
    return { ...this.check(now, 1), ...this.after(now) };
  }

  private inWindow(now: number) {
    return this.admitted.filter((e) => e.at > now - this.duration);
  }

  private used(now: number): number {
    return this.inWindow(now).reduce((n, e) => n + e.cost, 0);
  }

  /** Admitted, and the shortest wait after which `cost` would fit. */
  private check(now: number, cost: number): { allowed: boolean; retryAfter: number } {
    if (this.used(now) + cost <= this.points) return { allowed: true, retryAfter: 0 };
    // Candidate moments: just as each admitted request leaves the window.
    const waits = this.inWindow(now)
      .map((e) => e.at + this.duration - now)
      .sort((a, b) => a - b);
    const retryAfter = waits.find((w) => this.used(now + w) + cost <= this.points);
    return { allowed: false, retryAfter: retryAfter ?? Infinity };
  }

  private after(now: number): { remaining: number; reset: number } {
    const live = this.inWindow(now);
    return {
      remaining: Math.max(0, this.points - this.used(now)),
      reset: live.length ? Math.max(...live.map((e) => e.at + this.duration - now)) : 0,
    };
  }
}

/** One step of a limiter run: advance the clock by `dt`, then consume `cost` (or peek). */
export interface LimiterStep {
  dt: number;
  cost: number;
  op: 'consume' | 'peek';
}

/**
 * Runs to check a sliding-window limiter against `SlidingLogModel`: small limits, and clock steps that hit
 * the window edges (exactly `duration` later, one ms before), where off-by-ones hide. Three consumes per peek.
 */
export const slidingWindowRuns = fc
  .record({ points: fc.integer({ min: 1, max: 8 }), duration: fc.integer({ min: 1, max: 5_000 }) })
  .chain(({ points, duration }) =>
    fc.record({
      points: fc.constant(points),
      duration: fc.constant(duration),
      steps: fc.array(
        fc.record<LimiterStep>({
          dt: fc.oneof(
            fc.constant(0),
            fc.constant(1),
            fc.constant(duration),
            fc.constant(duration - 1),
            fc.integer({ min: 0, max: 2 * duration }),
          ),
          cost: fc.integer({ min: 1, max: points }),
          op: fc.constantFrom('consume', 'consume', 'consume', 'peek'),
        }),
        { minLength: 1, maxLength: 40 },
      ),
    }),
  );
