/**
 * Records every timer and interval created while installed and still pending, with where it was created,
 * so a test can assert that closing a module left none behind. `process.getActiveResourcesInfo()` alone
 * is too coarse: jest and the harness create and clear their own timers at the same time.
 */
export class TimerTracker {
  private readonly live = new Map<unknown, string>();
  private readonly originals = {
    setTimeout: global.setTimeout,
    clearTimeout: global.clearTimeout,
    setInterval: global.setInterval,
    clearInterval: global.clearInterval,
  };

  install(): this {
    const { live, originals } = this;
    const where = () => new Error().stack!.split('\n').slice(3, 6).join(' <- ').trim();
    const g = global as unknown as Record<string, unknown>;
    g.setTimeout = (fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) => {
      const t = originals.setTimeout(() => {
        live.delete(t);
        fn(...args);
      }, ms);
      live.set(t, `setTimeout(${ms}) at ${where()}`);
      return t;
    };
    g.setInterval = (fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) => {
      const t = originals.setInterval(fn, ms, ...args);
      live.set(t, `setInterval(${ms}) at ${where()}`);
      return t;
    };
    g.clearTimeout = (t: NodeJS.Timeout) => {
      live.delete(t);
      originals.clearTimeout(t);
    };
    g.clearInterval = (t: NodeJS.Timeout) => {
      live.delete(t);
      originals.clearInterval(t);
    };
    return this;
  }

  /** Pending timers created since `install()`, described by their creation site. */
  pending(): string[] {
    return [...this.live.values()];
  }

  uninstall(): void {
    Object.assign(global, this.originals);
  }
}
