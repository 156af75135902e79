/** The part of an OpenTelemetry span this lib touches. */
interface SpanLike {
  setAttribute(key: string, value: string | number | boolean): unknown;
}

type WithSpan = <T>(
  name: string,
  attributes: Record<string, string> | undefined,
  fn: (span: SpanLike) => T,
) => T;

/**
 * `@redwing/metrics`' `withSpan` (a child span of the request while tracing is on), or a plain call when that
 * optional peer is not installed.
 */
export const withSpan: WithSpan = (() => {
  try {
    return (require('@redwing/metrics') as { withSpan: WithSpan }).withSpan;
  } catch {
    const noop: SpanLike = { setAttribute: () => undefined };
    return ((_name, _attributes, fn) => fn(noop)) as WithSpan;
  }
})();
