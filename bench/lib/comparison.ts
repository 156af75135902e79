// The schedule and the record every ours-vs-peer comparison shares, whatever it measures (in-process ops in
// compare.ts, HTTP requests in bench/cache/http.ts and bench/rate-limit/http-compare.ts).
import type { BenchSettings } from './options';
import { printJsonLine } from './output';
import { spread, type Spread } from './stats';

export type Side = 'ours' | 'peer';

export interface SideStats {
  label: string;
  opsPerSec: Spread;
  cpuUsPerOp: Spread;
  errors: number;
}

export interface ComparisonSummary {
  type: 'summary';
  scenario: string;
  variant: string;
  description: string;
  concurrency: number;
  rounds: number;
  ms: number;
  warmupMs: number;
  ours: SideStats;
  peer: SideStats;
  /** Median over rounds of (ours ops/s ÷ peer ops/s) measured in the same round. */
  ratio: Spread;
  /** Median over rounds of (ours CPU µs/op ÷ peer CPU µs/op). */
  cpuRatio: Spread;
  goal?: number;
  meetsGoal?: boolean;
}

/** What a comparison is called and held to. */
export interface ComparisonHead {
  scenario: string;
  variant: string;
  /** One line describing the workload, printed in the summary. */
  description: string;
  /** Required ratio ours/peer of ops/s (median of per-round ratios). */
  goal?: number;
  settings: BenchSettings;
}

/** One comparison: what it is called, and how one run of a side is made and read. */
export interface Comparison<R> extends ComparisonHead {
  /** Operations (or connections) in flight: printed, not enforced here. */
  concurrency: number;
  /** What each side is called in the lines and the table. */
  sides: Record<Side, { label: string }>;
  /** A warm-up run of `side` (settings.warmupMs); throws if it went wrong. */
  warmUp(side: Side): Promise<unknown>;
  /** A measured run of `side` (settings.ms); throws if it went wrong. */
  measure(side: Side, round: number): Promise<R>;
  /** The run's own fields of its `measurement` JSON line, printed after `concurrency`. */
  fields(run: R): Record<string, unknown>;
  /** Called once a measurement's line is printed (e.g. to let the process settle). */
  afterMeasurement?(): Promise<void>;
  opsPerSec(run: R): number;
  cpuUsPerOp(run: R): number;
  /** @default 0 */
  errors?(run: R): number;
}

/**
 * Warm both sides up (ours, then the peer; skipped when warmupMs is 0), then run `rounds` rounds, each
 * measuring ours and the peer back to back; the order flips every round so drift (thermal, GC, Redis memory)
 * hits both alike. Prints one `measurement` JSON line per measured run and returns every run with the
 * summary, which the caller completes (goal, extra fields) and prints.
 */
export async function runComparison<R>(
  c: Comparison<R>,
): Promise<{ runs: Record<Side, R[]>; summary: ComparisonSummary }> {
  const { scenario, variant, concurrency, settings, sides } = c;
  if (settings.warmupMs > 0) {
    for (const side of ['ours', 'peer'] as const) await c.warmUp(side);
  }
  const runs: Record<Side, R[]> = { ours: [], peer: [] };
  for (let round = 1; round <= settings.rounds; round++) {
    const order = round % 2 === 1 ? (['ours', 'peer'] as const) : (['peer', 'ours'] as const);
    for (const side of order) {
      const run = await c.measure(side, round);
      runs[side].push(run);
      const head = {
        type: 'measurement',
        scenario,
        variant,
        round,
        side,
        label: sides[side].label,
        concurrency,
      };
      printJsonLine({ ...head, ...c.fields(run) });
      await c.afterMeasurement?.();
    }
  }
  const errors = c.errors ?? (() => 0);
  const stats = (side: Side): SideStats => ({
    label: sides[side].label,
    opsPerSec: spread(runs[side].map((r) => c.opsPerSec(r))),
    cpuUsPerOp: spread(runs[side].map((r) => c.cpuUsPerOp(r))),
    errors: runs[side].reduce((n, r) => n + errors(r), 0),
  });
  const perRound = (metric: (run: R) => number) =>
    spread(runs.ours.map((o, i) => metric(o) / metric(runs.peer[i])));
  const summary: ComparisonSummary = {
    type: 'summary',
    scenario,
    variant,
    description: c.description,
    concurrency,
    rounds: settings.rounds,
    ms: settings.ms,
    warmupMs: settings.warmupMs,
    ours: stats('ours'),
    peer: stats('peer'),
    ratio: perRound((r) => c.opsPerSec(r)),
    cpuRatio: perRound((r) => c.cpuUsPerOp(r)),
    goal: c.goal,
  };
  return { runs, summary };
}

/** Whether the summary's median ratio reaches `goal` (undefined without a goal). */
export function meetsGoal(summary: ComparisonSummary): boolean | undefined {
  return summary.goal === undefined ? undefined : summary.ratio.median >= summary.goal;
}
