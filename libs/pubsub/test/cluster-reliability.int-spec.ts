// Sharded pub/sub on Cluster after the subscriber connections are killed on every node: the sharded
// subscribers come back by themselves, ephemeral messages flow again, and a resumable subscriber gets the
// events published meanwhile, in order, once.
import type { PubSubMessage } from '@redwing/pubsub';
import { RedisCluster, stopAll } from '../../../test/harness';
import { boot, collector, range, waitFor, type Instance } from './helpers';

afterAll(() => stopAll());

describe('PubSubService on Cluster: re-subscribe after the subscriber connections are killed', () => {
  let cluster: RedisCluster;
  let a: Instance;
  let b: Instance;

  beforeAll(async () => {
    cluster = await RedisCluster.start();
    const topology = { cluster: { nodes: cluster.seeds() } };
    a = await boot(topology);
    b = await boot(topology);
  }, 60_000);

  afterAll(async () => {
    await a?.module.close();
    await b?.module.close();
    await cluster?.stop();
  });

  it('comes back by itself; nothing published meanwhile is lost for subscribeFrom', async () => {
    const got: PubSubMessage[] = [];
    const ephemeral = b.pubsub.subscribe('news:9', (m) => got.push(m));
    const c = collector();
    const resumable = b.pubsub.subscribeFrom('board:42', undefined, c.handler);
    await Promise.all([ephemeral.ready, resumable.ready]);
    await a.pubsub.publishEvent('board:42', { type: 'seq', data: { n: 0 } });
    await waitFor('event 0', 5_000, () => c.numbers().length === 1);

    for (const node of cluster.nodes) await node.command('CLIENT', 'KILL', 'TYPE', 'pubsub').catch(() => 0);
    for (const n of range(100)) await a.pubsub.publishEvent('board:42', { type: 'seq', data: { n } });

    await waitFor(
      'the 100 events published while the subscribers were down',
      15_000,
      () => c.numbers().length >= 101,
    );
    expect(c.numbers()).toEqual([0, ...range(100)]);
    await waitFor(
      'ephemeral delivery again',
      15_000,
      async () => {
        await a.pubsub.publish('news:9', { ping: true });
        return got.length > 0;
      },
      { intervalMs: 200 },
    );
    await Promise.all([ephemeral.unsubscribe(), resumable.unsubscribe()]);
  }, 60_000);
});
