// Trace context across pub/sub, on two instances (A publishes, B delivers) against a real redis-server, with
// MetricsModule tracing on and spans kept by a real SDK span processor: the `pubsub.publish` span carries its
// traceparent in the event, and B's handler runs inside a `pubsub.deliver` span (CONSUMER, a root of its own
// trace) linked to that publish span — for ephemeral messages, for resumable events delivered live, and for
// resumable events read back from the stream (a catch-up). With tracing off, no traceparent is written and
// handlers run outside any span.
import { Test } from '@nestjs/testing';
import { SpanKind, trace, type SpanContext } from '@opentelemetry/api';
import { isTracingActive, MetricsModule, withSpan } from '@redwing/metrics';
import {
  PubSubModule,
  PubSubService,
  type PubSubMessage,
  type PublishReceipt,
  type ResumableDelivery,
} from '@redwing/pubsub';
import { RedisClientManager, RedisClientModule } from '@redwing/redis';
import { fastRedisOptions, RedisServer, stopAll, waitFor } from '../../../test/harness';
import { MemorySpans } from '../../metrics/test/memory-spans';
import type { Instance } from './helpers';

type Finished = ReturnType<MemorySpans['exporter']['getFinishedSpans']>[number];

let server: RedisServer;

beforeAll(async () => {
  server = await RedisServer.start();
});

afterAll(async () => {
  await server?.stop();
  await stopAll();
});

async function boot(store: MemorySpans | undefined): Promise<Instance> {
  const module = await Test.createTestingModule({
    imports: [
      RedisClientModule.forRoot({ ...fastRedisOptions({ commandTimeout: 1_000 }), url: server.url() }),
      MetricsModule.forRoot({
        serviceName: 'pubsub-tracing',
        useEnv: false,
        defaultMetrics: false,
        series: false,
        path: false,
        tracing: store ? { enabled: true, spanProcessors: [store.processor] } : false,
      }),
      PubSubModule.forRoot({ useEnv: false }),
    ],
  }).compile();
  await module.init();
  const manager = module.get(RedisClientManager);
  await manager.get().waitUntilReady(10_000);
  const pubsub = module.get(PubSubService);
  await waitFor('the subscriber connection', 5_000, () => pubsub.getState() === 'up');
  return { module, pubsub, manager };
}

/** The span active where a handler runs (its id), or undefined outside any span. */
function activeContext(): SpanContext | undefined {
  return trace.getActiveSpan()?.spanContext();
}

/** Trace and span id of a link or span context. */
const ids = (c: SpanContext) => ({ traceId: c.traceId, spanId: c.spanId });

/** The raw envelopes of a channel's stream (what instances exchange). */
async function rawEvents(i: Instance, channel: string): Promise<Array<Record<string, unknown>>> {
  const key = `${i.manager.keyPrefix}:pubsub:{${channel}}:events`;
  const entries = await i.manager.get().command.xrange(key, '-', '+');
  return entries.map(([, fields]) => JSON.parse(fields[1]) as Record<string, unknown>);
}

describe('publish → deliver span links across two instances', () => {
  const store = new MemorySpans();
  let a: Instance;
  let b: Instance;

  const finished = (): Finished[] => store.exporter.getFinishedSpans();
  const spanOf = (ctx: SpanContext | undefined): Finished | undefined =>
    ctx && finished().find((s) => s.spanContext().spanId === ctx.spanId);

  /** The span B's handler ran in, once finished: a `pubsub.deliver` root linked to `publish`. */
  async function expectDeliverLinkedTo(
    ctx: SpanContext | undefined,
    publish: Finished,
    delivery: 'live' | 'catch-up',
  ): Promise<Finished> {
    expect(ctx).toBeDefined();
    const deliver = await waitFor('the deliver span', 3_000, () => spanOf(ctx));
    expect(deliver.name).toBe('pubsub.deliver');
    expect(deliver.kind).toBe(SpanKind.CONSUMER);
    expect(deliver.attributes['redwing.pubsub.delivery']).toBe(delivery);
    expect(deliver.attributes['messaging.destination.name']).toBe(
      publish.attributes['messaging.destination.name'],
    );
    // A link to the publish span, not a parent: a trace of its own.
    expect(deliver.parentSpanContext).toBeUndefined();
    expect(deliver.spanContext().traceId).not.toBe(publish.spanContext().traceId);
    expect(deliver.links.map((l) => ids(l.context))).toEqual([ids(publish.spanContext())]);
    return deliver;
  }

  beforeAll(async () => {
    a = await boot(store);
    b = await boot(store);
    expect(isTracingActive()).toBe(true);
  }, 30_000);

  afterAll(async () => {
    await a?.module.close();
    await b?.module.close();
    expect(isTracingActive()).toBe(false);
  });

  beforeEach(() => store.clear());

  it('ephemeral: B handles the message inside a deliver span linked to the publish span on A', async () => {
    const seen: Array<{ m: PubSubMessage; ctx: SpanContext | undefined }> = [];
    const sub = b.pubsub.subscribe('news:traced', (m) => seen.push({ m, ctx: activeContext() }));
    await sub.ready;
    const request = await withSpan('request', undefined, async (span) => {
      expect(await a.pubsub.publish('news:traced', { n: 1 })).toBe(true);
      return span.spanContext();
    });
    await waitFor('the message on B', 3_000, () => seen.length === 1);
    expect(seen[0].m.data).toEqual({ n: 1 });

    const publish = await waitFor('the publish span', 3_000, () =>
      finished().find((s) => s.name === 'pubsub.publish'),
    );
    expect(publish.kind).toBe(SpanKind.PRODUCER);
    expect(publish.parentSpanContext?.spanId).toBe(request.spanId); // the publish is part of the request
    expect(publish.attributes['redwing.pubsub.tier']).toBe('ephemeral');
    const deliver = await expectDeliverLinkedTo(seen[0].ctx, publish, 'live');
    expect(deliver.attributes['redwing.pubsub.tier']).toBe('ephemeral');
    // A has no subscriber: the only deliver span is B's.
    expect(finished().filter((s) => s.name === 'pubsub.deliver')).toHaveLength(1);
    await sub.unsubscribe();
  });

  it('resumable: live deliveries and a catch-up from the stream on B link to each event’s publish span on A', async () => {
    const live: Array<{ d: ResumableDelivery<{ n: number }>; ctx: SpanContext | undefined }> = [];
    const sub = b.pubsub.subscribeFrom<{ n: number }>('board:traced', undefined, (d) =>
      live.push({ d, ctx: activeContext() }),
    );
    await sub.ready;
    const receipts: PublishReceipt[] = [];
    await withSpan('request', undefined, async () => {
      for (const n of [1, 2, 3]) {
        receipts.push(await a.pubsub.publishEvent('board:traced', { type: 'seq', data: { n } }));
      }
    });
    await waitFor('3 live events on B', 3_000, () => live.length === 3);
    const publishOf = (id: string) =>
      finished().find((s) => s.name === 'pubsub.publish' && s.attributes['messaging.message.id'] === id);
    await waitFor('3 publish spans', 3_000, () => receipts.every((r) => publishOf(r.id!)));

    for (const [i, { d, ctx }] of live.entries()) {
      expect(d).toMatchObject({ kind: 'event', event: { id: receipts[i].id, data: { n: i + 1 } } });
      const publish = publishOf(receipts[i].id!)!;
      expect(publish.kind).toBe(SpanKind.PRODUCER);
      const deliver = await expectDeliverLinkedTo(ctx, publish, 'live');
      expect(deliver.attributes).toMatchObject({
        'redwing.pubsub.tier': 'resumable',
        'messaging.message.id': receipts[i].id,
      });
    }

    // A subscriber resuming from the start reads the same events from the stream: each delivery in its own
    // deliver span, linked to the same publish span.
    const caughtUp: Array<{ d: ResumableDelivery<{ n: number }>; ctx: SpanContext | undefined }> = [];
    const late = b.pubsub.subscribeFrom<{ n: number }>('board:traced', '0-0', (d) =>
      caughtUp.push({ d, ctx: activeContext() }),
    );
    await late.ready;
    await waitFor('3 events caught up on B', 3_000, () => caughtUp.length === 3);
    const spanIds = new Set<string>();
    for (const [i, { d, ctx }] of caughtUp.entries()) {
      expect(d).toMatchObject({ kind: 'event', event: { id: receipts[i].id } });
      const deliver = await expectDeliverLinkedTo(ctx, publishOf(receipts[i].id!)!, 'catch-up');
      spanIds.add(deliver.spanContext().spanId);
    }
    expect(spanIds.size).toBe(3);

    // What carried the context: the publish span's traceparent in every stored event.
    const raw = await rawEvents(a, 'board:traced');
    expect(raw.map((e) => e.tp)).toEqual(
      receipts.map((r) => {
        const c = publishOf(r.id!)!.spanContext();
        return `00-${c.traceId}-${c.spanId}-01`;
      }),
    );
    await Promise.all([sub.unsubscribe(), late.unsubscribe()]);
  });
});

describe('tracing off', () => {
  it('writes no traceparent and delivers outside any span', async () => {
    const a = await boot(undefined);
    const b = await boot(undefined);
    try {
      expect(isTracingActive()).toBe(false);
      const got: Array<SpanContext | undefined> = [];
      const sub = b.pubsub.subscribeFrom('board:untraced', undefined, () => got.push(activeContext()));
      const eph = b.pubsub.subscribe('news:untraced', () => got.push(activeContext()));
      await Promise.all([sub.ready, eph.ready]);
      await a.pubsub.publishEvent('board:untraced', { type: 'seq', data: { n: 1 } });
      await a.pubsub.publish('news:untraced', { n: 2 });
      await waitFor('both deliveries on B', 3_000, () => got.length === 2);
      expect(got).toEqual([undefined, undefined]);
      const raw = await rawEvents(a, 'board:untraced');
      expect(raw).toHaveLength(1);
      expect(raw[0]).not.toHaveProperty('tp');
      await Promise.all([sub.unsubscribe(), eph.unsubscribe()]);
    } finally {
      await a.module.close();
      await b.module.close();
    }
  });
});
