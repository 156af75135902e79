/** The part of a tracing span that Redwing libs touch (an OpenTelemetry `Span` fits). */
export interface RedwingSpan {
  setAttribute(key: string, value: string | number | boolean): unknown;
}

/**
 * How `runInSpan` opens its span, beyond name and attributes. Everything is optional and costs nothing while
 * no tracer is installed: the runner alone reads it.
 */
export interface RedwingSpanOptions {
  /**
   * W3C `traceparent`s of spans this one is linked to (not children of): where the work came from when it is
   * not part of the same operation — the publish of a message being delivered. Unparsable values are ignored.
   */
  links?: readonly string[];
  /**
   * Start a trace of its own instead of a child of the active span. For work triggered by a message rather
   * than by what happens to be active (a socket's context outlives the request that opened it).
   */
  root?: boolean;
  /** The OpenTelemetry span kind. @default 'internal' */
  kind?: 'internal' | 'producer' | 'consumer';
}

/**
 * Runs `fn` inside a span named `name` and ends it when `fn` returns or its promise settles. A runner
 * installed by an older copy of this package may ignore `options` (the span is then a plain child).
 */
export type SpanRunner = <T>(
  name: string,
  attributes: Record<string, string | number | boolean> | undefined,
  fn: (span: RedwingSpan) => T,
  options?: RedwingSpanOptions,
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
 * `ratelimit.decision`). `options` links the span to others (by W3C `traceparent`), or makes it a root.
 */
export function runInSpan<T>(
  name: string,
  attributes: Record<string, string | number | boolean> | undefined,
  fn: (span: RedwingSpan) => T,
  options?: RedwingSpanOptions,
): T {
  const runner = slot[SLOT];
  return runner ? runner(name, attributes, fn, options) : fn(NOOP_SPAN);
}
