import { performance } from 'node:perf_hooks';

/** One measured run of a contended lock: pairs done, give-ups, and the wait of every acquisition. */
export interface ContendedRun {
  pairs: number;
  giveUps: number;
  firstError?: string;
  elapsedMs: number;
  pairsPerSec: number;
  cpuUsPerPair: number;
  /** Wait (ms) from the acquire call to the grant, successful acquisitions only. */
  p50Wait: number;
  p99Wait: number;
  maxWait: number;
}

/**
 * `concurrency` workers each loop acquire → release on one resource for `ms` ms; an acquisition that gives up
 * (rejects) is counted and the worker tries again. Stops starting new acquisitions at the deadline and waits
 * for those in flight (bounded by the acquirers' own wait budgets), so every wait is counted.
 */
export async function runContended(options: {
  ms: number;
  concurrency: number;
  acquire: () => Promise<unknown>;
  release: (lock: unknown) => Promise<unknown>;
}): Promise<ContendedRun> {
  const { ms, concurrency, acquire, release } = options;
  const waits: number[] = [];
  let giveUps = 0;
  let firstError: string | undefined;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const deadline = t0 + ms;
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline && waits.length < 5_000_000) {
      const started = performance.now();
      let lock: unknown;
      try {
        lock = await acquire();
      } catch (err) {
        giveUps++;
        firstError ??= err instanceof Error ? `${err.name}: ${err.message}` : String(err);
        continue;
      }
      waits.push(performance.now() - started);
      await release(lock);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsedMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  waits.sort((a, b) => a - b);
  const at = (q: number) =>
    waits.length ? waits[Math.min(waits.length - 1, Math.floor(q * waits.length))] : NaN;
  return {
    pairs: waits.length,
    giveUps,
    firstError,
    elapsedMs,
    pairsPerSec: (waits.length * 1000) / elapsedMs,
    cpuUsPerPair: waits.length ? (cpu.user + cpu.system) / waits.length : NaN,
    p50Wait: at(0.5),
    p99Wait: at(0.99),
    maxWait: waits.length ? waits[waits.length - 1] : NaN,
  };
}
