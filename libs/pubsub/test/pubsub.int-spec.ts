// PubSubService against real Redis, standalone and Cluster (sharded pub/sub): two instances in one process,
// both tiers, resume after a gap, resync beyond retention, bad input.
import { PubSubChannelError, PubSubConfigError, type PubSubMessage } from '@redwing/pubsub';
import type { RedisClientModuleOptions } from '@redwing/redis';
import { RedisCluster, RedisServer, stopAll } from '../../../test/harness';
import { boot, collector, range, waitFor, type Instance } from './helpers';
import { resolvePubSubConfig } from '../src/pubsub.config';

afterAll(() => stopAll());

describe.each(['standalone', 'cluster'] as const)('PubSubService on %s', (kind) => {
  let server: RedisServer | undefined;
  let cluster: RedisCluster | undefined;
  let topology: Partial<RedisClientModuleOptions>;
  let a: Instance;
  let b: Instance;

  beforeAll(async () => {
    if (kind === 'cluster') {
      cluster = await RedisCluster.start();
      topology = { cluster: { nodes: cluster.seeds() } };
    } else {
      server = await RedisServer.start();
      topology = { url: server.url() };
    }
    a = await boot(topology, { retention: { maxEvents: 50, maxAge: 60_000 } });
    b = await boot(topology, { retention: { maxEvents: 50, maxAge: 60_000 } });
  }, 60_000);

  afterAll(async () => {
    await a?.module.close();
    await b?.module.close();
    await cluster?.stop();
    await server?.stop();
  });

  it('delivers an ephemeral message to every instance, once each, local handlers included', async () => {
    const gotA: PubSubMessage<{ n: number }>[] = [];
    const gotB: PubSubMessage<{ n: number }>[] = [];
    const subA = a.pubsub.subscribe<{ n: number }>('news:1', (m) => gotA.push(m));
    const subB = b.pubsub.subscribe<{ n: number }>('news:1', (m) => gotB.push(m));
    await Promise.all([subA.ready, subB.ready]);
    if (kind === 'cluster') {
      // Sharded: the channel is an SSUBSCRIBE channel on the shard that owns its slot.
      const masters = await cluster!.masters();
      const listed = await Promise.all(masters.map((m) => m.command('PUBSUB', 'SHARDCHANNELS')));
      expect(listed.flat()).toContain('redwing:pubsub:{news:1}');
    }
    for (const n of range(20)) expect(await a.pubsub.publish('news:1', { n })).toBe(true);
    // On a timeout, say what each side got and what Redis saw (once failed on an ioredis 5 run under load).
    const details = () =>
      `A got [${gotA.map((m) => m.data.n).join(',')}] state ${a.pubsub.getState()}; ` +
      `B got [${gotB.map((m) => m.data.n).join(',')}] state ${b.pubsub.getState()}; ` +
      `B stats ${JSON.stringify(b.pubsub.stats())}`;
    await waitFor('B to receive 20', 5_000, () => gotB.length === 20, { details });
    await waitFor('A to receive 20', 5_000, () => gotA.length === 20, { details });
    expect(gotB.map((m) => m.data.n)).toEqual(range(20));
    expect(gotA.map((m) => m.data.n)).toEqual(range(20));
    expect(gotB[0]).toMatchObject({ channel: 'news:1', data: { n: 1 }, ts: expect.any(Number) });
    await subA.unsubscribe();
    await subB.unsubscribe();
    await b.pubsub.publish('news:1', { n: 99 });
    await new Promise((r) => setTimeout(r, 100));
    expect(gotA).toHaveLength(20);
  });

  it('delivers resumable events live in order with ids, and resumes a late subscriber from its last id', async () => {
    const live = collector();
    const sub = b.pubsub.subscribeFrom('board:7', undefined, live.handler);
    await sub.ready;
    const ids: string[] = [];
    for (const n of range(10)) {
      const receipt = await a.pubsub.publishEvent('board:7', { type: 'card.created', data: { n } });
      expect(receipt.status).toBe('written');
      ids.push(receipt.id!);
    }
    await waitFor('10 live events', 5_000, () => live.numbers().length === 10);
    expect(live.numbers()).toEqual(range(10));
    const first = live.deliveries[0];
    expect(first).toEqual({
      kind: 'event',
      event: { id: ids[0], channel: 'board:7', type: 'card.created', data: { n: 1 }, ts: expect.any(Number) },
    });

    // A subscriber that saw event 4 gets exactly 5..10, then live ones.
    const late = collector();
    const lateSub = a.pubsub.subscribeFrom('board:7', ids[3], late.handler);
    await lateSub.ready;
    expect(late.numbers()).toEqual([5, 6, 7, 8, 9, 10]);
    await b.pubsub.publishEvent('board:7', { type: 'card.created', data: { n: 11 } });
    await waitFor(
      'event 11 at both',
      5_000,
      () => late.numbers().length === 7 && live.numbers().length === 11,
    );
    expect(late.numbers()).toEqual([5, 6, 7, 8, 9, 10, 11]);

    // '0-0' = everything retained.
    const all = collector();
    const allSub = a.pubsub.subscribeFrom('board:7', '0-0', all.handler);
    await allSub.ready;
    expect(all.numbers()).toEqual(range(11));
    await Promise.all([sub.unsubscribe(), lateSub.unsubscribe(), allSub.unsubscribe()]);
  });

  it('says resync-required when the gap is older than retention, then carries on live', async () => {
    const first = await a.pubsub.publishEvent('board:8', { type: 't', data: { n: 0 } });
    for (const n of range(300)) await a.pubsub.publishEvent('board:8', { type: 't', data: { n } });
    const c = collector();
    const sub = b.pubsub.subscribeFrom('board:8', first.id!, c.handler);
    await sub.ready;
    expect(c.deliveries[0]).toMatchObject({ kind: 'resync-required', channel: 'board:8', reason: 'trimmed' });
    expect(c.numbers()).toEqual([]);
    await a.pubsub.publishEvent('board:8', { type: 't', data: { n: 301 } });
    await waitFor('the event after the resync', 5_000, () => c.numbers().length === 1);
    expect(c.numbers()).toEqual([301]);

    const missing = collector();
    const sub2 = b.pubsub.subscribeFrom('board:never', '1700000000000-0', missing.handler);
    await sub2.ready;
    expect(missing.resyncs()).toEqual([
      { kind: 'resync-required', channel: 'board:never', reason: 'expired', resumeAfter: '0-0' },
    ]);
    // An id newer than anything the stream issued (e.g. kept from before a Redis data loss).
    const future = collector();
    const sub3 = b.pubsub.subscribeFrom('board:8', '9999999999999-0', future.handler);
    await sub3.ready;
    expect(future.resyncs()).toEqual([
      {
        kind: 'resync-required',
        channel: 'board:8',
        reason: 'unknown-id',
        resumeAfter: expect.stringMatching(/^\d+-\d+$/),
      },
    ]);
    await Promise.all([sub.unsubscribe(), sub2.unsubscribe(), sub3.unsubscribe()]);
  });

  it('refuses bad channels, oversize payloads and (on Cluster) patterns', async () => {
    expect(() => a.pubsub.publish('bad channel', 1)).toThrow(PubSubChannelError);
    expect(() => a.pubsub.subscribe('x{y}', () => undefined)).toThrow(PubSubChannelError);
    expect(() => a.pubsub.subscribeFrom('board:1', 'yesterday', () => undefined)).toThrow(/lastId/);
    expect(() => a.pubsub.publish('big', 'x'.repeat(70_000))).toThrow(/maxPayloadSize/);
    if (kind === 'cluster') {
      expect(() => a.pubsub.subscribe('board:*', () => undefined)).toThrow(/not available on Cluster/);
    } else {
      const got: PubSubMessage[] = [];
      const sub = b.pubsub.subscribe('room:*', (m) => got.push(m));
      const local = a.pubsub.subscribe('room:*', (m) => got.push(m));
      await Promise.all([sub.ready, local.ready]);
      await a.pubsub.publish('room:42', { hi: 1 });
      await waitFor('pattern deliveries on both instances', 5_000, () => got.length === 2);
      expect(got.map((m) => [m.channel, m.pattern])).toEqual([
        ['room:42', 'room:*'],
        ['room:42', 'room:*'],
      ]);
      await Promise.all([sub.unsubscribe(), local.unsubscribe()]);
    }
  });
});

describe('PubSubModule options', () => {
  it('rejects unknown and out-of-range options naming the field', () => {
    expect(() => resolvePubSubConfig({ retension: {} } as never, {})).toThrow(PubSubConfigError);
    expect(() => resolvePubSubConfig({ retension: {} } as never, {})).toThrow(/retention/);
    expect(() => resolvePubSubConfig({ retention: { maxEvents: 1 } }, {})).toThrow(/retention\.maxEvents/);
    expect(() => resolvePubSubConfig({}, { PUBSUB_RETENTION_MAX_AGE: 'soon' })).toThrow(
      /PUBSUB_RETENTION_MAX_AGE/,
    );
    expect(resolvePubSubConfig({}, { PUBSUB_RETENTION_MAX_EVENTS: '5000' }).retention.maxEvents).toBe(5_000);
    expect(
      resolvePubSubConfig({ useEnv: false }, { PUBSUB_RETENTION_MAX_EVENTS: '5000' }).retention.maxEvents,
    ).toBe(1_000);
  });
});
