// The kit's ChannelSubscription against a real redis-server whose ACL refuses the channel: it reports the
// refusal once per reason, sends the SUBSCRIBE again until Redis accepts it (no restart), sends it again when
// ioredis's own re-subscribe after a reconnect is refused (ioredis drops that refusal silently), delivers only
// its channel's messages, and UNSUBSCRIBEs on stop.
import { ChannelSubscription, type ManagedRedisClient } from '@redwing/redis';
import { RedisServer, stopAll } from '../../../test/harness';
import { bootRedisModule, sleep, waitFor } from './helpers';

afterAll(() => stopAll());

describe('ChannelSubscription', () => {
  let server: RedisServer;
  let client: ManagedRedisClient;
  let close: () => Promise<void>;
  const acl = (...rules: string[]) => server.command('ACL', 'SETUSER', 'default', ...rules);
  /** SUBSCRIBE calls Redis refused so far (an ACL denial counts as rejected, on some versions as failed). */
  const refusedSubscribes = async () => {
    const line = /cmdstat_subscribe:([^\r\n]*)/.exec(
      String(await server.command('INFO', 'commandstats')),
    )?.[1];
    const count = (field: string) => Number(new RegExp(`${field}=(\\d+)`).exec(line ?? '')?.[1] ?? 0);
    return count('rejected_calls') + count('failed_calls');
  };
  const subscribers = async (channel: string) =>
    Number(((await server.command('PUBSUB', 'NUMSUB', channel)) as [string, number])[1]);

  beforeAll(async () => {
    server = await RedisServer.start();
    const booted = await bootRedisModule({ url: server.url() });
    client = booted.manager.get();
    close = () => booted.module.close();
    await client.waitUntilReady(5_000);
  });

  afterAll(async () => {
    await close();
    await server.stop();
  });

  afterEach(() => acl('allchannels'));

  it('delivers its channel only, and UNSUBSCRIBEs on stop', async () => {
    const got: string[] = [];
    const sub = new ChannelSubscription(client.subscriber(), 'kit:a', { onMessage: (m) => got.push(m) });
    const otherGot: string[] = [];
    const other = new ChannelSubscription(client.subscriber(), 'kit:b', {
      onMessage: (m) => otherGot.push(m),
    });
    await Promise.all([sub.start(), other.start()]);
    expect(sub.refused()).toBeUndefined();
    expect(await subscribers('kit:a')).toBe(1);
    await client.command.publish('kit:b', 'not ours');
    await client.command.publish('kit:a', 'one');
    await waitFor('message', 5_000, () => got.length === 1);
    expect(got).toEqual(['one']);

    await sub.stop();
    expect(await subscribers('kit:a')).toBe(0);
    expect(await subscribers('kit:b')).toBe(1); // the shared connection keeps the other channel
    await client.command.publish('kit:a', 'after stop');
    await client.command.publish('kit:b', 'barrier'); // delivered in order on the same connection
    await waitFor('barrier', 5_000, () => otherGot.includes('barrier'));
    await other.stop();
    expect(got).toEqual(['one']);
    expect(otherGot).toEqual(['not ours', 'barrier']);
  });

  it('is sent again until accepted: at start, and when the re-subscribe after a reconnect is refused', async () => {
    await acl('resetchannels');
    const got: string[] = [];
    const refusals: string[] = [];
    let accepted = 0;
    const sub = new ChannelSubscription(client.subscriber(), 'kit:acl', {
      onMessage: (m) => got.push(m),
      onRefused: (why) => refusals.push(why),
      onAccepted: () => accepted++,
      retryMinMs: 100,
      retryMaxMs: 400,
    });
    try {
      await sub.start(); // settles on the first answer, refused here; never rejects
      expect(sub.refused()).toMatch(/NOPERM|permission/i);
      const first = await refusedSubscribes();
      await waitFor('two retries', 5_000, async () => (await refusedSubscribes()) >= first + 2);
      expect(refusals).toHaveLength(1); // the same reason is reported once, however often it is retried

      await acl('allchannels');
      await waitFor('accepted', 5_000, () => sub.refused() === undefined);
      expect(accepted).toBe(1);
      await client.command.publish('kit:acl', 'heard');
      await waitFor('message', 5_000, () => got.length === 1);

      // Revoked and the subscriber connection dropped: ioredis re-subscribes on its own and Redis refuses it;
      // the re-send on `ready` sees that and retries until the ACL is fixed again.
      await acl('resetchannels');
      await server.command('CLIENT', 'KILL', 'TYPE', 'pubsub');
      await waitFor('refused after the reconnect', 5_000, () => sub.refused() !== undefined);
      await acl('allchannels');
      await waitFor('accepted again', 5_000, () => sub.refused() === undefined);
      expect(accepted).toBe(2);
      await client.command.publish('kit:acl', 'heard again');
      await waitFor('message after the reconnect', 5_000, () => got.length === 2);
      expect(got).toEqual(['heard', 'heard again']);
    } finally {
      await sub.stop();
    }
  });

  it('stops retrying once stopped', async () => {
    await acl('resetchannels');
    const sub = new ChannelSubscription(client.subscriber(), 'kit:stopped', {
      onMessage: () => undefined,
      retryMinMs: 50,
    });
    await sub.start();
    expect(sub.refused()).toBeDefined();
    await sub.stop();
    const before = await refusedSubscribes();
    await sleep(400); // 50, 100 and 200 ms retries would have run by now
    expect(await refusedSubscribes()).toBe(before);
  });
});
