import type { ComparisonSummary } from './comparison';

/** Prints one JSON line (measurements, summaries, checks): scripts/bench.js keeps every line that starts with `{`. */
export function printJsonLine(obj: object): void {
  process.stdout.write(JSON.stringify(obj) + '\n');
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
