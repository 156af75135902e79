import type { ComparisonSummary } from './comparison';
import { benchSettings, selectedVariants, type BenchSettings } from './options';
import { formatSummaryTable } from './output';
import { withRedis, type BenchRedis } from './redis-server';

/**
 * Entry point of a scenario file: runs `body` with the shared settings, prints the summary table,
 * and sets the exit code (1 on error; also 1 on a missed goal with --strict). Never leaves the process
 * hanging: a scenario that does not exit within its time budget after finishing is exited.
 */
export function benchMain(
  scenario: string,
  body: (settings: BenchSettings) => Promise<ComparisonSummary[]>,
): void {
  const settings = benchSettings();
  const started = Date.now();
  body(settings)
    .then((summaries) => {
      process.stdout.write('\n' + formatSummaryTable(summaries) + '\n');
      const missed = summaries.filter((s) => s.meetsGoal === false);
      if (missed.length > 0) {
        process.stdout.write(
          `\n${scenario}: goal missed by ${missed.map((s) => `${s.variant} (${s.ratio.median.toFixed(3)}× < ${s.goal}×)`).join(', ')}\n`,
        );
        if (settings.strict) process.exitCode = 1;
      }
      process.stdout.write(`${scenario}: done in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    })
    .catch((err: unknown) => {
      process.stderr.write(
        `${scenario}: FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
      );
      process.exitCode = 1;
    })
    .finally(() => {
      // Everything should be closed by now; do not let a stray handle keep the bench alive.
      setTimeout(() => process.exit(), 2_000).unref();
    });
}

/**
 * benchMain() for a scenario of named variants on one shared Redis: runs `runVariant` for each variant
 * selectedVariants() picks, one after the other, and stops the Redis at the end.
 */
export function benchVariants<V extends { name: string; diagnostic?: boolean }>(
  scenario: string,
  variants: readonly V[],
  runVariant: (redis: BenchRedis, variant: V, settings: BenchSettings) => Promise<ComparisonSummary>,
): void {
  benchMain(scenario, (settings) =>
    withRedis(async (redis) => {
      const summaries: ComparisonSummary[] = [];
      for (const v of selectedVariants(settings, variants))
        summaries.push(await runVariant(redis, v, settings));
      return summaries;
    }),
  );
}
