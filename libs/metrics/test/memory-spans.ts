/**
 * Spans kept in memory by a real SDK span processor (`tracing.spanProcessors`), in the shape the OTLP
 * receiver gives them, so in-process tests ask the same questions as the export tests.
 */
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import { SpanStore, type ReceivedSpan } from './receivers';

type Readable = ReturnType<InMemorySpanExporter['getFinishedSpans']>[number];

function toReceived(s: Readable): ReceivedSpan {
  const plain = (a: Record<string, unknown> | undefined) =>
    Object.fromEntries(Object.entries(a ?? {}).map(([k, v]) => [k, v as string | number | boolean]));
  return {
    traceId: s.spanContext().traceId,
    spanId: s.spanContext().spanId,
    parentSpanId: s.parentSpanContext?.spanId ?? '',
    name: s.name,
    kind: s.kind + 1, // the API's INTERNAL = 0; OTLP's = 1
    attributes: plain(s.attributes),
    status: { code: s.status.code, message: s.status.message },
    events: s.events.map((e) => ({ name: e.name, attributes: plain(e.attributes) })),
    service: String(s.resource.attributes['service.name'] ?? ''),
    scope: s.instrumentationScope.name,
  };
}

export class MemorySpans extends SpanStore {
  readonly exporter = new InMemorySpanExporter();
  readonly processor = new SimpleSpanProcessor({ exporter: this.exporter });

  override all(): ReceivedSpan[] {
    return this.exporter.getFinishedSpans().map(toReceived);
  }

  override clear(): void {
    this.exporter.reset();
  }
}
