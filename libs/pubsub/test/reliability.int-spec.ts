// RELIABILITY.md "Pub/sub" rows at the library level, against real Redis: gap recovery with the subscriber
// connection cut while 1,000 sequenced events publish (1,000/1,000 in order, 0 duplicates), re-subscribe
// after a Redis restart with local delivery during the outage, and the bounded offline buffer.
import type { PubSubMessage, PubSubState } from '@redwing/pubsub';
import { FaultProxy, RedisServer, stopAll } from '../../../test/harness';
import { boot, collector, range, sleep, waitFor, type Instance } from './helpers';

afterAll(() => stopAll());

describe('PubSubService reliability', () => {
  let server: RedisServer;
  const instances: Instance[] = [];

  beforeAll(async () => {
    server = await RedisServer.start({ appendonly: true, appendfsync: 'always' });
  });

  afterAll(async () => {
    for (const i of instances) await i.module.close();
    await server?.stop();
  });

  it('gap recovery: subscriber cut off while 1,000 events publish gets 1,000/1,000 in order, 0 duplicates', async () => {
    const proxy = await FaultProxy.start({ host: '127.0.0.1', port: server.port });
    const publisher = await boot({ url: server.url() }, { retention: { maxEvents: 5_000, maxAge: 600_000 } });
    const reader = await boot({ url: `redis://127.0.0.1:${proxy.port}` });
    instances.push(publisher, reader);
    const states: PubSubState[] = [];
    reader.pubsub.onStateChange((s) => states.push(s));
    const c = collector();
    const sub = reader.pubsub.subscribeFrom('board:gap', undefined, c.handler);
    await sub.ready;
    await publisher.pubsub.publishEvent('board:gap', { type: 'seq', data: { n: 0 } });
    await waitFor('event 0', 5_000, () => c.numbers().length === 1);

    proxy.setMode('reset'); // every connection of the reader, the subscriber included, is cut and refused
    await waitFor('the reader to notice', 5_000, () => reader.pubsub.getState() === 'degraded');
    for (const n of range(1_000))
      await publisher.pubsub.publishEvent('board:gap', { type: 'seq', data: { n } });
    await sleep(300);
    expect(c.numbers()).toEqual([0]);
    proxy.setMode('pass');

    await waitFor('1,000 events after the reconnect', 15_000, () => c.numbers().length === 1_001);
    await sleep(200);
    expect(c.numbers()).toEqual([0, ...range(1_000)]);
    expect(c.resyncs()).toEqual([]);
    const ids = c.deliveries.map((d) => (d.kind === 'event' ? d.event.id : ''));
    expect(new Set(ids).size).toBe(1_001);
    expect(states.slice(states.indexOf('degraded'))).toEqual(['degraded', 'up']);
    expect(reader.pubsub.stats().subscriberReconnects).toBeGreaterThanOrEqual(1);

    // Live delivery continues after the catch-up.
    await publisher.pubsub.publishEvent('board:gap', { type: 'seq', data: { n: 1_001 } });
    await waitFor('a live event after the catch-up', 5_000, () => c.numbers().length === 1_002);
    await sub.unsubscribe();
    await proxy.stop();
  }, 60_000);

  it('Redis restart: local delivery continues, resumable publishes wait and are written in order, subscribers re-subscribe', async () => {
    const a = await boot({ url: server.url() }, { offlineBuffer: { maxEvents: 10, retryInterval: 100 } });
    const b = await boot({ url: server.url() });
    instances.push(a, b);
    const localA: PubSubMessage[] = [];
    const remoteB: PubSubMessage[] = [];
    a.pubsub.subscribe('chat:1', (m) => localA.push(m));
    const subB = b.pubsub.subscribe('chat:1', (m) => remoteB.push(m));
    const c = collector();
    const resumable = b.pubsub.subscribeFrom('board:restart', undefined, c.handler);
    await Promise.all([subB.ready, resumable.ready]);
    await a.pubsub.publishEvent('board:restart', { type: 'seq', data: { n: 0 } });
    await waitFor('event 0', 5_000, () => c.numbers().length === 1);

    await server.kill();
    await waitFor(
      'both degraded',
      5_000,
      () => a.pubsub.getState() === 'degraded' && b.pubsub.getState() === 'degraded',
    );
    // Ephemeral: this instance's handlers still get it; Redis did not.
    expect(await a.pubsub.publish('chat:1', { during: 'outage' })).toBe(false);
    await waitFor('local delivery during the outage', 2_000, () => localA.length === 1);
    // Resumable: 15 into a buffer of 10 → the oldest 5 dropped and counted.
    for (const n of range(15)) {
      expect(await a.pubsub.publishEvent('board:restart', { type: 'seq', data: { n } })).toEqual({
        status: 'buffered',
        id: null,
      });
    }
    expect(a.pubsub.stats()).toMatchObject({ buffered: 10, dropped: { 'offline-buffer-full': 5 } });

    await server.restart();
    await waitFor(
      'both up again',
      10_000,
      () => a.pubsub.getState() === 'up' && b.pubsub.getState() === 'up',
    );
    await waitFor('the buffered events at B', 10_000, () => c.numbers().length === 11);
    expect(c.numbers()).toEqual([0, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
    expect(a.pubsub.stats().buffered).toBe(0);

    // Re-subscribed without user code: an ephemeral message after the restart reaches B.
    await a.pubsub.publish('chat:1', { after: 'restart' });
    await waitFor('B to receive after the restart', 5_000, () => remoteB.length === 1);
    expect(remoteB[0].data).toEqual({ after: 'restart' });
    expect(b.pubsub.stats().subscriberReconnects).toBeGreaterThanOrEqual(1);
  }, 60_000);

  it('closes its connections on shutdown', async () => {
    const i = await boot({ url: server.url() });
    const sub = i.pubsub.subscribeFrom('board:bye', undefined, () => undefined);
    await sub.ready;
    const conn = i.manager.get().subscriber();
    await i.module.close();
    expect(conn.status).toBe('end');
  });
});

describe('PubSubService: a PUBLISH Redis refuses', () => {
  it('fails a resumable publish without appending the event (nothing to replay, no duplicate on retry)', async () => {
    const server = await RedisServer.start();
    await server.command('ACL', 'SETUSER', 'default', 'resetchannels');
    const a = await boot({ url: server.url() });
    try {
      const publish = () => a.pubsub.publishEvent('board:acl', { type: 'card.moved', data: { card: 1 } });
      /** The event streams in Redis (the test's server holds nothing else of that name). */
      const streams = async () =>
        ((await server.command('SCAN', '0', 'MATCH', '*:events', 'COUNT', '1000')) as [string, string[]])[1];
      await expect(publish()).rejects.toThrow(/NOPERM/);
      await expect(publish()).rejects.toThrow(/NOPERM/); // a retry appends nothing either
      expect(await streams()).toEqual([]);

      // The ACL is fixed: the same publish is appended, once.
      await server.command('ACL', 'SETUSER', 'default', 'allchannels');
      const receipt = await publish();
      expect(receipt.status).toBe('written');
      const after = await streams();
      expect(after).toHaveLength(1);
      expect(await server.command('XLEN', after[0])).toBe(1);
    } finally {
      await a.module.close();
      await server.stop();
    }
  }, 30_000);
});

describe('PubSubService: a SUBSCRIBE Redis refuses', () => {
  it('is listed in stats().refused and sent again until accepted: at start, and when the re-subscribe after a reconnect is refused', async () => {
    const server = await RedisServer.start();
    const acl = (...rules: string[]) => server.command('ACL', 'SETUSER', 'default', ...rules);
    await acl('resetchannels'); // the default user may not use any channel (Redis 7's default for new users)
    const a = await boot({ url: server.url() });
    const b = await boot({ url: server.url() });
    try {
      const got: string[] = [];
      const channel = a.pubsub.subscribe('chat:acl', (m) => got.push(`${m.channel}=${String(m.data)}`));
      const pattern = a.pubsub.subscribe('room:*', (m) => got.push(`${m.channel}=${String(m.data)}`));
      await Promise.all([channel.ready, pattern.ready]); // resolves: `ready` never rejects
      await waitFor('both refused', 5_000, () => a.pubsub.stats().refused.length === 2);
      expect(a.pubsub.stats().refused.sort()).toEqual(['chat:acl', 'room:*']);

      // The ACL is fixed: the lib's retry (1 s, then 2 s, ...) subscribes them without a restart.
      await acl('allchannels');
      await waitFor('accepted', 10_000, () => a.pubsub.stats().refused.length === 0);
      await b.pubsub.publish('chat:acl', 1);
      await b.pubsub.publish('room:7', 2);
      await waitFor('both delivered', 5_000, () => got.length === 2, { details: () => got.join(', ') });
      expect(got.sort()).toEqual(['chat:acl=1', 'room:7=2']);

      // Revoked again and the subscriber connection dropped: ioredis's own re-subscribe is refused (and
      // dropped by ioredis without a word); the lib's re-send after the reconnect sees the refusal.
      await acl('resetchannels');
      await server.command('CLIENT', 'KILL', 'TYPE', 'pubsub');
      await waitFor('refused after the reconnect', 10_000, () => a.pubsub.stats().refused.length === 2);
      await acl('allchannels');
      await waitFor('accepted again', 10_000, () => a.pubsub.stats().refused.length === 0);
      await b.pubsub.publish('chat:acl', 3);
      await b.pubsub.publish('room:8', 4);
      await waitFor('delivered after the reconnect', 5_000, () => got.length === 4, {
        details: () => got.join(', '),
      });
      expect(got.slice(2).sort()).toEqual(['chat:acl=3', 'room:8=4']);
    } finally {
      await Promise.all([a.module.close(), b.module.close()]);
      await server.stop();
    }
  }, 60_000);
});
