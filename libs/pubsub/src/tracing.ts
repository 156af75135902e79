import { runInSpan, type RedwingSpan } from '@redwing/redis';
import type { Envelope } from './resumable-cursor';

/**
 * Trace context across pub/sub. The `pubsub.publish` span (PRODUCER) puts its W3C `traceparent` in the
 * envelope (`tp`, only while tracing is on); every delivery of the event on any instance runs in a
 * `pubsub.deliver` span (CONSUMER) **linked** to it, not its child:
 * - one publish fans out to every instance and handler, and a resumable event may be delivered minutes later
 *   (a catch-up, a client resuming): as children these would stretch the publisher's trace without bound
 *   (a request trace still growing an hour later, 1,000 sockets → 1,000 spans in it);
 * - the context active when a Redis message arrives is the subscriber socket's (async context follows the
 *   connection, opened or reopened during whatever happened to be active), unrelated to the message; so the
 *   deliver span starts a trace of its own (its sampling decided there) and the link says where it came from.
 * This is what the OpenTelemetry messaging conventions describe for push delivery (a "process" span with a
 * link to the creation context).
 */

/** The W3C traceparent of an OpenTelemetry span (what `runInSpan` hands out while tracing is on). */
export function traceparentOf(span: RedwingSpan): string | undefined {
  const ctx = (
    span as { spanContext?: () => { traceId: string; spanId: string; traceFlags: number } }
  ).spanContext?.();
  if (!ctx || /^0+$/.test(ctx.traceId)) return undefined;
  return `00-${ctx.traceId}-${ctx.spanId}-${(ctx.traceFlags & 0xff).toString(16).padStart(2, '0')}`;
}

/**
 * Runs `fn` (the delivery of `env` to this instance's handlers) in a `pubsub.deliver` span linked to the
 * publish span, when the event carries one; a plain call otherwise (nothing is built while tracing is off at
 * the publisher, and `runInSpan` is a plain call while it is off here). `id` is the stream id of a resumable
 * event; `delivery` says whether it came live over pub/sub or from the stream (a catch-up).
 */
export function inDeliverSpan(
  env: Envelope,
  id: string,
  delivery: 'live' | 'catch-up',
  fn: () => void,
): void {
  if (typeof env.tp !== 'string') return fn();
  const attributes: Record<string, string> = {
    'messaging.system': 'redis',
    'messaging.operation.type': 'process',
    'messaging.destination.name': env.c,
    'redwing.pubsub.tier': id ? 'resumable' : 'ephemeral',
    'redwing.pubsub.delivery': delivery,
  };
  if (id) attributes['messaging.message.id'] = id;
  runInSpan('pubsub.deliver', attributes, fn, { links: [env.tp], root: true, kind: 'consumer' });
}
