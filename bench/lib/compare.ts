import { runFor, type RunResult } from './runner';
import type { BenchSettings } from './options';

export interface Contender {
  /** What runs, e.g. "RedisClientManager.get().command" or "ioredis". */
  label: string;
  op: () => Promise<unknown>;
}

export interface CompareOptions {
  scenario: string;
  variant: string;
  /** One line describing the workload, printed in the summary. */
  description: string;
  concurrency: number;
  ours: Contender;
  peer: Contender;
  /** Required ratio ours/peer of ops/s (median of per-round ratios). */
  goal?: number;
  settings: BenchSettings;
}

export interface SideStats {
  label: string;
  opsPerSec: { median: number; min: number; max: number };
  cpuUsPerOp: { median: number; min: number; max: number };
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
  ratio: { median: number; min: number; max: number };
  /** Median over rounds of (ours CPU µs/op ÷ peer CPU µs/op). */
  cpuRatio: { median: number; min: number; max: number };
  goal?: number;
  meetsGoal?: boolean;
}

export function median(values: number[]): number {
  const s = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

function spread(values: number[]): { median: number; min: number; max: number } {
  const finite = values.filter((v) => Number.isFinite(v));
  return { median: median(finite), min: Math.min(...finite), max: Math.max(...finite) };
}

const gc = (globalThis as { gc?: () => void }).gc;
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Settle between measurements: collect garbage (if --expose-gc) and let pending I/O drain. */
async function settle(): Promise<void> {
  await pause(50);
  gc?.();
  await pause(50);
}

function line(obj: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

/**
 * Warm both sides up, then run `rounds` rounds, each measuring ours and the peer back to back in the
 * same process; the order flips every round so drift (thermal, GC, Redis memory) hits both alike.
 * Prints one JSON line per measurement and returns the summary (also printed as a JSON line).
 */
export async function compare(options: CompareOptions): Promise<ComparisonSummary> {
  const { scenario, variant, concurrency, ours, peer, settings } = options;
  const { rounds, ms, warmupMs } = settings;
  const sides = { ours, peer } as const;

  if (warmupMs > 0) {
    for (const side of ['ours', 'peer'] as const) {
      const r = await runFor({ ms: warmupMs, concurrency, op: sides[side].op });
      assertHealthy(r, scenario, variant, side, 'warm-up');
      await settle();
    }
  }

  const results: Record<'ours' | 'peer', RunResult[]> = { ours: [], peer: [] };
  for (let round = 1; round <= rounds; round++) {
    const order = round % 2 === 1 ? (['ours', 'peer'] as const) : (['peer', 'ours'] as const);
    for (const side of order) {
      const r = await runFor({ ms, concurrency, op: sides[side].op });
      assertHealthy(r, scenario, variant, side, `round ${round}`);
      results[side].push(r);
      line({
        type: 'measurement',
        scenario,
        variant,
        round,
        side,
        label: sides[side].label,
        concurrency,
        ms: Math.round(r.elapsedMs),
        ops: r.ops,
        errors: r.errors,
        opsPerSec: Math.round(r.opsPerSec),
        cpuUsPerOp: round2(r.cpuUsPerOp),
        cpuLoad: round2(r.cpuLoad),
      });
      await settle();
    }
  }

  const stats = (side: 'ours' | 'peer'): SideStats => ({
    label: sides[side].label,
    opsPerSec: spread(results[side].map((r) => r.opsPerSec)),
    cpuUsPerOp: spread(results[side].map((r) => r.cpuUsPerOp)),
    errors: results[side].reduce((n, r) => n + r.errors, 0),
  });
  const perRound = results.ours.map((o, i) => o.opsPerSec / results.peer[i].opsPerSec);
  const cpuPerRound = results.ours.map((o, i) => o.cpuUsPerOp / results.peer[i].cpuUsPerOp);
  const summary: ComparisonSummary = {
    type: 'summary',
    scenario,
    variant,
    description: options.description,
    concurrency,
    rounds,
    ms,
    warmupMs,
    ours: stats('ours'),
    peer: stats('peer'),
    ratio: spread(perRound),
    cpuRatio: spread(cpuPerRound),
    goal: options.goal,
  };
  if (options.goal !== undefined) summary.meetsGoal = summary.ratio.median >= options.goal;
  line(summary as unknown as Record<string, unknown>);
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

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}

const fmtInt = (n: number) => Math.round(n).toLocaleString('en-US');
const fmt1 = (n: number) => n.toFixed(1);
const fmt2 = (n: number) => n.toFixed(2);

/** The human-readable table: medians, min–max, ratio ours/peer, CPU µs/op, goal. */
export function formatSummaryTable(summaries: ComparisonSummary[]): string {
  if (summaries.length === 0) return '(no measurements)';
  const first = summaries[0];
  const header = [
    'variant',
    'side',
    'ops/s median',
    'ops/s min–max',
    'CPU µs/op',
    'ratio ours/peer (min–max)',
    'CPU ratio',
    'goal',
  ];
  const rows: string[][] = [];
  for (const s of summaries) {
    const goal = s.goal === undefined ? '' : `≥ ${fmt2(s.goal)}× ${s.meetsGoal ? 'met' : 'MISSED'}`;
    const ratio = `${fmt2(s.ratio.median)}× (${fmt2(s.ratio.min)}–${fmt2(s.ratio.max)})`;
    for (const side of ['ours', 'peer'] as const) {
      const st = s[side];
      rows.push([
        side === 'ours' ? s.variant : '',
        `${side}: ${st.label}`,
        fmtInt(st.opsPerSec.median),
        `${fmtInt(st.opsPerSec.min)}–${fmtInt(st.opsPerSec.max)}`,
        fmt1(st.cpuUsPerOp.median),
        side === 'ours' ? ratio : '',
        side === 'ours' ? `${fmt2(s.cpuRatio.median)}×` : '',
        side === 'ours' ? goal : '',
      ]);
    }
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const fmtRow = (r: string[]) => '| ' + r.map((c, i) => c.padEnd(widths[i])).join(' | ') + ' |';
  const title =
    `${first.scenario}: ${summaries.map((s) => `${s.variant} = ${s.description}`).join('; ')}\n` +
    `${first.rounds} rounds × ${first.ms} ms per side after ${first.warmupMs} ms warm-up, order alternating; ` +
    `node ${process.version}`;
  return [
    title,
    fmtRow(header),
    '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|',
    ...rows.map(fmtRow),
  ].join('\n');
}
