import { context, propagation, ROOT_CONTEXT, type Context } from '@opentelemetry/api';
import type { Job } from 'bullmq';

/**
 * What Redwing carries in a job beside its data, stored as BullMQ's `opts.telemetry.metadata` (a string
 * BullMQ keeps with the job and only reads when its own telemetry is configured, which Redwing does not do):
 * the producer's trace context (W3C `traceparent`/`tracestate`) and the idempotency key.
 */
export interface JobMeta {
  /** Propagation carrier of the producer's active context. */
  tp?: Record<string, string>;
  /** Idempotency key. */
  ik?: string;
}

/** The metadata string for a new job: the active trace context and the idempotency key (undefined when empty). */
export function encodeJobMeta(idempotencyKey: string | undefined): string | undefined {
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  const meta: JobMeta = {};
  if (Object.keys(carrier).length > 0) meta.tp = carrier;
  if (idempotencyKey !== undefined) meta.ik = idempotencyKey;
  return meta.tp || meta.ik !== undefined ? JSON.stringify(meta) : undefined;
}

const EMPTY: JobMeta = Object.freeze({});

/** What a job carries (an empty object, not parsed, for a job with no metadata). */
export function decodeJobMeta(job: Pick<Job, 'opts'>): JobMeta {
  const raw = job.opts?.telemetry?.metadata;
  if (typeof raw !== 'string' || raw === '') return EMPTY;
  try {
    const parsed = JSON.parse(raw) as unknown;
    return typeof parsed === 'object' && parsed !== null ? (parsed as JobMeta) : EMPTY;
  } catch {
    return EMPTY;
  }
}

/** The idempotency key in decoded metadata. */
export function metaIdempotencyKey(meta: JobMeta): string | undefined {
  return typeof meta.ik === 'string' ? meta.ik : undefined;
}

/** The producer's trace context in decoded metadata (the root context when it carries none). */
export function metaContext(meta: JobMeta): Context {
  return meta.tp ? propagation.extract(ROOT_CONTEXT, meta.tp) : ROOT_CONTEXT;
}

/** The idempotency key a job was added with. */
export function idempotencyKeyOf(job: Pick<Job, 'opts'>): string | undefined {
  return metaIdempotencyKey(decodeJobMeta(job));
}

/** Run `fn` with `ctx` active, so spans started inside are children of the producer's span. */
export function withContext<T>(ctx: Context, fn: () => T): T {
  return ctx === ROOT_CONTEXT ? fn() : context.with(ctx, fn);
}
