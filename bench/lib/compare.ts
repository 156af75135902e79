import { meetsGoal, runComparison, type ComparisonHead, type ComparisonSummary } from './comparison';
import { printJsonLine } from './output';
import { runFor, type RunResult } from './runner';
import { round2 } from './stats';

export interface Contender {
  /** What runs, e.g. "RedisClientManager.get().command" or "ioredis". */
  label: string;
  op: () => Promise<unknown>;
}

export interface CompareOptions extends ComparisonHead {
  /** Operations in flight at once. */
  concurrency: number;
  ours: Contender;
  peer: Contender;
}

const gc = (globalThis as { gc?: () => void }).gc;
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Settle between measurements: collect garbage (if --expose-gc) and let pending I/O drain. */
async function settle(): Promise<void> {
  await pause(50);
  gc?.();
  await pause(50);
}

/**
 * Compare two async operations in this process with runFor(), on the schedule of runComparison() (warm-up,
 * alternating rounds), settling between runs. Prints one JSON line per measurement and returns the summary
 * (also printed as a JSON line).
 */
export async function compare(options: CompareOptions): Promise<ComparisonSummary> {
  const { ours, peer, ...head } = options;
  const { scenario, variant, concurrency, settings } = head;
  const sides = { ours, peer };
  const { summary } = await runComparison<RunResult>({
    ...head,
    sides,
    warmUp: async (side) => {
      const r = await runFor({ ms: settings.warmupMs, concurrency, op: sides[side].op });
      assertHealthy(r, scenario, variant, side, 'warm-up');
      await settle();
    },
    measure: async (side, round) => {
      const r = await runFor({ ms: settings.ms, concurrency, op: sides[side].op });
      assertHealthy(r, scenario, variant, side, `round ${round}`);
      return r;
    },
    fields: (r) => ({
      ms: Math.round(r.elapsedMs),
      ops: r.ops,
      errors: r.errors,
      opsPerSec: Math.round(r.opsPerSec),
      cpuUsPerOp: round2(r.cpuUsPerOp),
      cpuLoad: round2(r.cpuLoad),
    }),
    afterMeasurement: settle,
    opsPerSec: (r) => r.opsPerSec,
    cpuUsPerOp: (r) => r.cpuUsPerOp,
    errors: (r) => r.errors,
  });
  if (options.goal !== undefined) summary.meetsGoal = meetsGoal(summary);
  printJsonLine(summary);
  return summary;
}

/** A run with errors measures the wrong thing: fail loudly instead of printing a ratio. */
function assertHealthy(r: RunResult, scenario: string, variant: string, side: string, when: string): void {
  if (r.errors > 0 || r.ops === 0) {
    throw new Error(
      `${scenario}/${variant}: ${side} had ${r.errors} error(s) and ${r.ops} ops during ${when}` +
        (r.firstError ? ` (first: ${r.firstError})` : ''),
    );
  }
}
