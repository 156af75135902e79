import { BackoffTimer } from './backoff-timer';

describe('BackoffTimer', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  /** The delays of the runs `count` schedules produce, each scheduled right after the previous run. */
  function delays(timer: BackoffTimer, runs: () => number, count: number): number[] {
    const out: number[] = [];
    for (let i = 0; i < count; i++) {
      const before = runs();
      timer.schedule();
      let waited = 0;
      while (runs() === before) {
        jest.advanceTimersByTime(100);
        waited += 100;
      }
      out.push(waited);
    }
    return out;
  }

  it('doubles the delay from min to max, and starts again at min after reset()', () => {
    let runs = 0;
    const timer = new BackoffTimer(() => runs++, 100, 1_000);
    expect(delays(timer, () => runs, 6)).toEqual([100, 200, 400, 800, 1_000, 1_000]);
    timer.reset();
    expect(delays(timer, () => runs, 2)).toEqual([100, 200]);
  });

  it('keeps one pending run: schedule() while one is pending adds none', () => {
    let runs = 0;
    const timer = new BackoffTimer(() => runs++, 100, 1_000);
    timer.schedule();
    timer.schedule();
    timer.schedule();
    jest.advanceTimersByTime(10_000);
    expect(runs).toBe(1);
  });

  it('runs nothing after stop(), pending or scheduled later', () => {
    let runs = 0;
    const timer = new BackoffTimer(() => runs++, 100, 1_000);
    timer.schedule();
    timer.stop();
    timer.schedule();
    jest.advanceTimersByTime(10_000);
    expect(runs).toBe(0);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('defaults to 1 s doubling to 30 s', () => {
    let runs = 0;
    const timer = new BackoffTimer(() => runs++);
    expect(delays(timer, () => runs, 7)).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
  });
});
