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
