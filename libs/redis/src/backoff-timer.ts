/**
 * One pending run of `task` at a time, after a delay that starts at `minMs` and doubles with each run
 * scheduled, up to `maxMs`, until `reset()`. For retries that must not hammer Redis and must not give up: a
 * SUBSCRIBE an ACL refuses, say, which succeeds once an operator fixes the ACL. The timer never keeps the
 * process alive; after `stop()` nothing runs again.
 */
export class BackoffTimer {
  private timer?: NodeJS.Timeout;
  private delay: number;
  private stopped = false;

  constructor(
    private readonly task: () => void,
    private readonly minMs = 1_000,
    private readonly maxMs = 30_000,
  ) {
    this.delay = minMs;
  }

  /** Run `task` after the current delay (and double the next one), unless a run is already pending. */
  schedule(): void {
    if (this.timer || this.stopped) return;
    const delay = this.delay;
    this.delay = Math.min(delay * 2, this.maxMs);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.stopped) this.task();
    }, delay);
    this.timer.unref();
  }

  /** The next run waits `minMs` again (the thing retried succeeded). */
  reset(): void {
    this.delay = this.minMs;
  }

  /** Cancel a pending run; `schedule()` does nothing from now on. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
