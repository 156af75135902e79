// The live endpoint (/live, socket.io) of two real gateways on one redis-server — A on Fastify, B on Express —
// with RELIABILITY.md's "Pub/sub and WebSocket" rows: events from any instance reach every subscribed socket,
// handshake refusals before any subscription, oversize and flood, slow consumer with memory bounded, gap
// recovery 1,000/1,000 in order across the two instances with the client offline 30 s and the subscriber
// connections killed meanwhile, resync beyond retention, and degraded/recovered notices around a Redis
// restart.
import { PubSubService } from '@redwing/pubsub';
import type { Socket } from 'socket.io-client';
import { sleep, stopAll, waitFor } from '../../../test/harness';
import { collectEvents, liveClient, opened, subscribe, type LiveClientOptions } from './live-client';
import { LiveGateway } from '../src/live/live.gateway';
import {
  gatewayEnv,
  NO_TELEMETRY,
  postJson,
  serveGateway,
  startTwoGateways,
  stopTwoGateways,
  type Gateway,
  type TwoGateways,
} from './support';

interface LiveEvent {
  id: string;
  channel: string;
  type: string;
  data: { n?: number; boardId?: number; card?: { title: string } };
  ts: number;
}

const sockets: Socket[] = [];
const client = (base: string, opts: LiveClientOptions = {}): Socket => liveClient(base, sockets, opts);
const events = (socket: Socket): LiveEvent[] => collectEvents<LiveEvent>(socket);

/** Gap recovery: the client is offline 30 s while 1,000 events publish, one every 30 ms. */
const OFFLINE_MS_PER_EVENT = 30;

const live = (g: Gateway) => g.app.get(LiveGateway);
const pubsub = (g: Gateway) => g.app.get(PubSubService);

describe('live events over WebSocket on two gateways', () => {
  let two: TwoGateways;

  beforeAll(async () => {
    two = await startTwoGateways((adapter, url) =>
      serveGateway(
        adapter,
        gatewayEnv(url, {
          ...NO_TELEMETRY,
          LIVE_MAX_PAYLOAD: '16384',
          LIVE_MESSAGE_RATE: '20',
          LIVE_SEND_BUFFER: '262144',
          LIVE_ALLOWED_ORIGINS: undefined,
          PUBSUB_RETENTION_MAX_EVENTS: '2000',
          PUBSUB_OFFLINE_BUFFER: undefined,
        }),
      ),
    );
    await waitFor('both pub/sub subscribers up', 10_000, () =>
      [two.a, two.b].every((g) => pubsub(g).getState() === 'up'),
    );
  }, 60_000);

  afterEach(() => {
    for (const s of sockets.splice(0)) s.disconnect();
  });

  afterAll(async () => {
    await stopTwoGateways(two ?? {});
    for (const v of [
      'LIVE_MAX_PAYLOAD',
      'LIVE_MESSAGE_RATE',
      'LIVE_SEND_BUFFER',
      'PUBSUB_RETENTION_MAX_EVENTS',
    ]) {
      delete process.env[v];
    }
    await stopAll();
  });

  it('a card added on B reaches sockets on A (Fastify) and B (Express) within 1 s', async () => {
    const onA = client(two.a.base);
    const onB = client(two.b.base);
    await Promise.all([opened(onA), opened(onB)]);
    const gotA = events(onA);
    const gotB = events(onB);
    expect(await subscribe(onA, 'board:5')).toEqual({ ok: true });
    expect(await subscribe(onB, 'board:5')).toEqual({ ok: true });
    const posted = Date.now();
    const res = await postJson(two.b.base, '/boards/5/cards', { title: 'live card' });
    expect(res.status).toBe(201);
    await waitFor('the event on A and B', 1_000, () => gotA.length === 1 && gotB.length === 1);
    expect(Date.now() - posted).toBeLessThanOrEqual(1_000);
    expect(gotA[0]).toEqual({
      id: expect.stringMatching(/^\d+-\d+$/),
      channel: 'board:5',
      type: 'card.created',
      data: { boardId: 5, card: expect.objectContaining({ title: 'live card' }) },
      ts: expect.any(Number),
    });
    expect(gotB[0]).toEqual(gotA[0]);
  });

  it('handshake: a foreign origin and a bad token are refused before any subscription; channels are authorized', async () => {
    await waitFor('earlier sockets gone', 5_000, () => live(two.a).stats().sockets === 0);
    const before = live(two.a).stats();
    const evil = client(two.a.base, { origin: 'http://evil.example' });
    await expect(opened(evil)).rejects.toThrow();
    const forged = client(two.a.base, { token: 'not-a-session' });
    await expect(opened(forged)).rejects.toThrow('unauthorized');
    const badDemo = client(two.b.base, { token: 'demo.<script>' });
    await expect(opened(badDemo)).rejects.toThrow('unauthorized');
    const after = live(two.a).stats();
    expect(after.sockets).toBe(0);
    expect(after.rooms).toBe(before.rooms);
    expect(after.connections).toBe(before.connections);
    expect(after.dropped.origin).toBe((before.dropped.origin ?? 0) + 1);
    expect(after.dropped.unauthorized).toBe((before.dropped.unauthorized ?? 0) + 1);

    // Own origin and no origin are accepted; anonymous sockets see public boards only.
    const own = client(two.a.base, { origin: two.a.base });
    const anonymous = client(two.a.base);
    const alice = client(two.a.base, { token: 'Bearer demo.alice' });
    await Promise.all([opened(own), opened(anonymous), opened(alice)]);
    expect(await subscribe(anonymous, 'user:alice')).toEqual({ ok: false, error: 'forbidden' });
    expect(await subscribe(anonymous, 'admin')).toEqual({ ok: false, error: 'invalid-channel' });
    expect(await subscribe(anonymous, 'board:1001')).toEqual({ ok: false, error: 'invalid-channel' });
    expect(await subscribe(alice, 'user:alice')).toEqual({ ok: true });
    expect(await subscribe(own, 'board:1')).toEqual({ ok: true });
  });

  it('flood and size: an oversize frame closes the socket; 1,000 msg/s is throttled with memory bounded', async () => {
    const big = client(two.a.base);
    await opened(big);
    const closed = new Promise<string>((resolve) => big.once('disconnect', (reason) => resolve(reason)));
    big.emit('subscribe', { channel: 'board:1', pad: 'x'.repeat(20_000) });
    expect(await closed).toBe('transport close');

    const flood = client(two.b.base);
    await opened(flood);
    const heapBefore = process.memoryUsage().heapUsed;
    const started = Date.now();
    const replies: Array<Promise<{ ok: boolean; error?: string }>> = [];
    for (let i = 0; i < 1_000; i++) {
      replies.push(flood.timeout(10_000).emitWithAck('subscribe', { channel: `board:${(i % 40) + 1}` }));
      if (i % 10 === 9) await new Promise((r) => setTimeout(r, 10)); // ~1,000 messages a second
    }
    const answers = await Promise.all(replies);
    const seconds = (Date.now() - started) / 1_000;
    const allowed = answers.filter((a) => a.ok).length;
    const limited = answers.filter((a) => a.error === 'rate-limited').length;
    expect(allowed + limited).toBe(1_000);
    // Token bucket of 20/s with a burst of 20: the rest is refused.
    expect(allowed).toBeLessThanOrEqual(20 + Math.ceil(20 * seconds) + 5);
    expect(limited).toBeGreaterThanOrEqual(1_000 - (20 + Math.ceil(20 * seconds) + 5));
    expect(flood.connected).toBe(true);
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(64 * 1024 * 1024);
  });

  it('slow consumer: a client that stops reading is dropped at its send-buffer cap; others keep up; heap bounded', async () => {
    const slow = client(two.a.base);
    const healthy = client(two.a.base);
    await Promise.all([opened(slow), opened(healthy)]);
    expect(await subscribe(slow, 'board:20')).toEqual({ ok: true });
    expect(await subscribe(healthy, 'board:20')).toEqual({ ok: true });
    const got = events(healthy);
    // Stop reading: the TCP window fills and the server's queue for this socket grows.
    const tcp = (
      slow.io.engine.transport as unknown as { ws: { _socket: { pause(): void; destroy(): void } } }
    ).ws._socket;
    tcp.pause();
    const dropsBefore = live(two.a).stats().dropped['slow-consumer'] ?? 0;
    const heapBefore = process.memoryUsage().heapUsed;
    const payload = 'y'.repeat(4_000);
    let sent = 0;
    // At most 10,000 events of 4 KB (40 MB) — far beyond the 256 KiB cap; stop as soon as it is dropped. In
    // batches of 10 (40 KB): a batch near the cap could get the healthy socket dropped too on a loaded machine,
    // where this process reads its events late.
    while (sent < 10_000 && (live(two.a).stats().dropped['slow-consumer'] ?? 0) === dropsBefore) {
      await Promise.all(
        Array.from({ length: 10 }, () =>
          pubsub(two.b).publishEvent('board:20', { type: 'fill', data: { n: ++sent, payload } }),
        ),
      );
    }
    await waitFor(
      'the slow socket dropped',
      5_000,
      () => (live(two.a).stats().dropped['slow-consumer'] ?? 0) === dropsBefore + 1,
    );
    expect(sent).toBeLessThan(10_000);
    await waitFor('the healthy socket to get every event', 10_000, () => got.length === sent);
    expect(healthy.connected).toBe(true);
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(64 * 1024 * 1024);
    tcp.destroy(); // a paused socket never reads the server's FIN
  }, 60_000);

  it('gap recovery: offline 30 s while 1,000 events publish on B, subscriber connections killed → 1,000/1,000 in order, 0 duplicates', async () => {
    const first = client(two.a.base);
    const stayer = client(two.a.base); // stays connected through the subscriber kills
    await Promise.all([opened(first), opened(stayer)]);
    const before = events(first);
    const stayed = events(stayer);
    expect(await subscribe(first, 'board:9')).toEqual({ ok: true });
    expect(await subscribe(stayer, 'board:9')).toEqual({ ok: true });
    await pubsub(two.b).publishEvent('board:9', { type: 'seq', data: { n: 0 } });
    await waitFor('event 0', 5_000, () => before.length === 1 && stayed.length === 1);
    const lastEventId = before[0].id;
    first.disconnect(); // the client goes offline for 30 s (RELIABILITY.md's figure)
    const offlineFrom = Date.now();

    // The 1,000 events spread over the 30 s (one every 30 ms, on schedule), with every subscriber connection
    // (both instances) killed twice while they publish: at a third and at two thirds of the window.
    const reconnectsBefore = pubsub(two.a).stats().subscriberReconnects;
    const kills: number[] = [];
    for (let n = 1; n <= 1_000; n++) {
      if (n === 333 || n === 667) {
        if (n === 667) await waitFor('A re-subscribed', 10_000, () => pubsub(two.a).getState() === 'up');
        kills.push(Number(await two.redis.command('CLIENT', 'KILL', 'TYPE', 'pubsub')));
      }
      await pubsub(two.b).publishEvent('board:9', { type: 'seq', data: { n } });
      const due = offlineFrom + n * OFFLINE_MS_PER_EVENT;
      if (due > Date.now()) await sleep(due - Date.now());
    }
    // At least the two instances' subscriber connections each time.
    expect(kills).toEqual([expect.any(Number), expect.any(Number)]);
    expect(Math.min(...kills)).toBeGreaterThanOrEqual(2);
    await waitFor('A re-subscribed', 10_000, () => pubsub(two.a).getState() === 'up');
    expect(pubsub(two.a).stats().subscriberReconnects).toBeGreaterThanOrEqual(reconnectsBefore + 2);

    const again = client(two.a.base);
    await opened(again);
    const got = events(again);
    const resyncs: unknown[] = [];
    again.on('resync-required', (r) => resyncs.push(r));
    expect(await subscribe(again, 'board:9', lastEventId)).toEqual({ ok: true });
    await waitFor('1,000 missed events', 10_000, () => got.length >= 1_000);
    await new Promise((r) => setTimeout(r, 200));
    expect(resyncs).toEqual([]);
    expect(got.map((e) => e.data.n)).toEqual(Array.from({ length: 1_000 }, (_, i) => i + 1));
    expect(new Set(got.map((e) => e.id)).size).toBe(1_000);
    // The socket that stayed connected got them too, through the instance's own catch-up.
    await waitFor('the staying socket to catch up', 10_000, () => stayed.length >= 1_001);
    expect(stayed.map((e) => e.data.n)).toEqual(Array.from({ length: 1_001 }, (_, i) => i));

    // Still live afterwards, once.
    await pubsub(two.b).publishEvent('board:9', { type: 'seq', data: { n: 1_001 } });
    await waitFor('the next live event', 5_000, () => got.length === 1_001);
    expect(got[1_000].data.n).toBe(1_001);
  }, 75_000);

  it('resync-required when the gap is older than retention (2,000 events kept; 2,500 missed)', async () => {
    const first = client(two.b.base);
    await opened(first);
    const before = events(first);
    expect(await subscribe(first, 'board:10')).toEqual({ ok: true });
    await pubsub(two.a).publishEvent('board:10', { type: 'seq', data: { n: 0 } });
    await waitFor('event 0', 5_000, () => before.length === 1);
    first.disconnect();
    for (let n = 1; n <= 2_500; n++)
      await pubsub(two.a).publishEvent('board:10', { type: 'seq', data: { n } });

    const again = client(two.b.base);
    await opened(again);
    const got = events(again);
    const resync = new Promise((resolve) => again.once('resync-required', resolve));
    expect(await subscribe(again, 'board:10', before[0].id)).toEqual({ ok: true });
    expect(await resync).toEqual({ channel: 'board:10', reason: 'trimmed' });
    expect(got).toEqual([]);
    await pubsub(two.a).publishEvent('board:10', { type: 'seq', data: { n: 2_501 } });
    await waitFor('live after the resync', 5_000, () => got.length === 1);
    expect(got[0].data.n).toBe(2_501);
  }, 60_000);

  it('exposes sockets, messages, drops, publish→deliver latency and re-subscriptions in /metrics', async () => {
    const socket = client(two.a.base);
    await opened(socket);
    const res = await fetch(`${two.a.base}/metrics`);
    const text = await res.text();
    expect(res.status).toBe(200);
    expect(text).toMatch(/^redwing_live_sockets_current [1-9]\d*$/m);
    expect(text).toMatch(/^redwing_live_messages_total\{direction="out"\} [1-9]\d*$/m);
    expect(text).toMatch(/^redwing_live_dropped_total\{reason="origin"\} [1-9]\d*$/m);
    expect(text).toMatch(/^redwing_live_dropped_total\{reason="slow-consumer"\} [1-9]\d*$/m);
    expect(text).toMatch(/^redwing_pubsub_delivery_latency_seconds_count [1-9]\d*$/m);
    expect(text).toMatch(/^redwing_pubsub_subscriber_reconnects_total [1-9]\d*$/m);
    expect(text).toMatch(/^redwing_pubsub_subscriber_state 1$/m);
    expect(text).toMatch(/^redwing_pubsub_published_total\{tier="resumable"\} \d+$/m);
  });

  it('Redis restart: sockets get degraded, then recovered, and live events flow again without re-subscribing', async () => {
    const socket = client(two.a.base);
    await opened(socket);
    const notices: string[] = [];
    socket.on('degraded', () => notices.push('degraded'));
    socket.on('recovered', () => notices.push('recovered'));
    socket.on('resync-required', () => notices.push('resync-required'));
    const got = events(socket);
    expect(await subscribe(socket, 'board:11')).toEqual({ ok: true });

    await two.redis.kill();
    await waitFor('degraded notice', 5_000, () => notices.includes('degraded'));
    await two.redis.restart();
    await waitFor('recovered notice', 10_000, () => notices.includes('recovered'));
    await waitFor('B back up', 10_000, () => pubsub(two.b).getState() === 'up');
    const res = await postJson(two.b.base, '/boards/11/cards', { title: 'after restart' });
    expect(res.status).toBe(201);
    await waitFor('the event after the restart', 5_000, () =>
      got.some((e) => e.data.card?.title === 'after restart'),
    );
    expect(notices.slice(0, 2)).toEqual(['degraded', 'recovered']);
  }, 60_000);
});
