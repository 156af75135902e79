import { Socket } from 'node:net';
import type { RedisEventMap } from '@redwing/redis';
import { RedisServer } from '../../../test/harness';
import { bootRedisModule, sleep, waitFor } from './helpers';
import { TimerTracker } from './timer-tracker';

// Its own file, so no other test's connections or timers come and go while resources are counted.
describe('graceful shutdown', () => {
  let a: RedisServer;
  let b: RedisServer;
  beforeAll(async () => {
    [a, b] = await Promise.all([RedisServer.start(), RedisServer.start({ requirepass: 'pw-for-b' })]);
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
  });

  const sockets = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;
  // Open sockets of this process to these two servers. Counting every socket of the process made the test
  // fail when a client leaked by an earlier test file of the same jest worker reconnected meanwhile.
  const socketsTo = (...servers: RedisServer[]) =>
    (process as unknown as { _getActiveHandles(): unknown[] })
      ._getActiveHandles()
      .filter((h) => h instanceof Socket && !h.destroyed && servers.some((s) => s.port === h.remotePort))
      .length;

  it('closes every connection and leaves no timers, sockets or listeners behind', async () => {
    await sleep(100);
    const before = sockets();
    const timers = new TimerTracker().install();
    const { module, manager } = await bootRedisModule({
      url: a.url(),
      clients: { other: { url: b.url({ password: 'pw-for-b' }) } },
      pool: { minSize: 1 },
    });
    const client = manager.get();
    expect(await client.waitUntilReady(5_000)).toBe(true);
    expect(await manager.get('other').waitUntilReady(5_000)).toBe(true);
    const sub = client.subscriber();
    await sub.subscribe('ch');
    const blocking = client.createDedicated('blocking', { commandTimeout: undefined });
    await client.withConnection((c) => c.ping());
    const closedEvents: Array<RedisEventMap['state']> = [];
    manager.events.on('state', (e) => e.current === 'closed' && closedEvents.push(e));
    expect(sockets()).toBeGreaterThanOrEqual(before + 5);
    expect(timers.pending().length).toBeGreaterThan(0); // health monitors and the pool reaper run
    const clientsSeen = Number(
      await a.cli('INFO', 'clients').then((t) => /connected_clients:(\d+)/.exec(t)?.[1]),
    );
    expect(clientsSeen).toBeGreaterThanOrEqual(4); // command, subscriber, blocking, pooled

    await module.close();

    timers.uninstall();
    expect(timers.pending()).toEqual([]);
    expect(socketsTo(a, b)).toBe(0);
    expect(manager.events.listenerCount()).toBe(0);
    for (const c of manager.all()) expect(c.command.status).toBe('end');
    expect(sub.status).toBe('end');
    expect(blocking.status).toBe('end');
    expect(closedEvents.map((e) => e.client).sort()).toEqual(['default', 'other']);
    // The server agrees: only redis-cli's own connection remains.
    expect(await a.cli('INFO', 'clients').then((t) => /connected_clients:(\d+)/.exec(t)?.[1])).toBe('1');
  });

  it('also leaves nothing behind when closed while Redis is down and the client is reconnecting', async () => {
    const victim = await RedisServer.start();
    const timers = new TimerTracker().install();
    const { module, manager } = await bootRedisModule({
      url: victim.url(),
      maxRetries: 1,
      pool: { minSize: 1 },
    });
    const client = manager.get();
    expect(await client.waitUntilReady(5_000)).toBe(true);
    client.subscriber();
    await victim.kill();
    await waitFor('reconnecting', 2_000, () => client.getConnectionState() === 'reconnecting');
    const parked = client.command.get('k').catch((e: Error) => e.name); // waits for a reconnect that never comes
    await module.close();
    expect(await parked).toBe('RedisUnavailableError');
    // A handshake command caught by the kill may still hold its own commandTimeout (300 ms) timer, which
    // ends by itself; anything still pending after that window is a leak.
    await sleep(350);
    timers.uninstall();
    expect(timers.pending()).toEqual([]);
    expect(socketsTo(victim)).toBe(0);
    await victim.stop();
  });
});
