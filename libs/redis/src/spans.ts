/** The part of a tracing span that Redwing libs touch (an OpenTelemetry `Span` fits). */
export interface RedwingSpan {
  setAttribute(key: string, value: string | number | boolean): unknown;
}

/** Runs `fn` inside a span named `name` and ends it when `fn` returns or its promise settles. */
export type SpanRunner = <T>(
  name: string,
  attributes: Record<string, string | number | boolean> | undefined,
  fn: (span: RedwingSpan) => T,
) => T;

const NOOP_SPAN: RedwingSpan = { setAttribute: () => undefined };

/**
 * Process-wide, on a registered symbol: the tracer is global (one per process), and an app may hold two
 * copies of this package (a lib built against another version), which must see the same runner.
 */
const SLOT = Symbol.for('redwing.spanRunner');
const slot = globalThis as { [SLOT]?: SpanRunner };

/**
 * Install (or with `null` remove) what `runInSpan` uses. `@redwing/metrics` installs its `withSpan` while
 * tracing is on, so lib spans nest under the request span without the libs depending on it.
 */
export function setSpanRunner(runner: SpanRunner | null): void {
  if (runner) slot[SLOT] = runner;
  else delete slot[SLOT];
}

/**
 * Runs `fn` in a child span of the active one while a tracer is installed (see `setSpanRunner`); a plain
 * call of `fn` with a span that records nothing otherwise. For a lib's own steps (`cache.lookup`,
 * `ratelimit.decision`).
 */
export function runInSpan<T>(
  name: string,
  attributes: Record<string, string | number | boolean> | undefined,
  fn: (span: RedwingSpan) => T,
): T {
  const runner = slot[SLOT];
  return runner ? runner(name, attributes, fn) : fn(NOOP_SPAN);
}
