// Cluster-wide per-minute series in a real Redis, written by two app instances: aggregation across
// instances, counters sampled from other libs' metrics, sum / avg / rate, hash-tagged keys that all have a
// TTL, and the failure rules — skipped and buffered while Redis is down, dropped (counted) when the buffer
// overflows or a sent pipeline fails, never written twice, never in the way of a request.
import type { INestApplication } from '@nestjs/common';
import { Redis } from 'ioredis';
import { RedisClientManager } from '@redwing/redis';
import { RedisServer, stopAll } from '../../../test/harness';
import { TimerTracker } from '../../redis/test/timer-tracker';
import { BUCKET, MetricsService, SeriesService, SeriesUnavailableError } from '../src';
import { sample } from './receivers';
import { createScenarioApp, listen } from './scenario-app';

const RETENTION = 600_000;

async function startInstance(
  redisUrl: string,
): Promise<{ app: INestApplication; base: string; series: SeriesService }> {
  const app = await createScenarioApp({
    adapter: 'fastify',
    redisUrl,
    // Flushed by hand in these tests: the timer would race the assertions.
    metrics: { series: { flushInterval: 60_000, retention: RETENTION } },
  });
  const base = await listen(app);
  await app.get(RedisClientManager).get().waitUntilReady(5_000);
  return { app, base, series: app.get(SeriesService) };
}

/** Requests no route matches: served without Redis, counted as requests. */
async function hit(base: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) expect((await fetch(`${base}/nope/${i}`)).status).toBe(404);
}

async function metricsText(app: INestApplication): Promise<string> {
  return app.get(MetricsService).metrics();
}

afterAll(() => stopAll());

/** Until the client has seen the connection drop (a flush before that is sent, and fails instead). */
async function untilDisconnected(app: INestApplication): Promise<void> {
  const client = app.get(RedisClientManager).get();
  const deadline = Date.now() + 5_000;
  while (client.getConnectionState() === 'ready' && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
  }
  expect(client.getConnectionState()).not.toBe('ready');
}

describe('series across two instances', () => {
  let redis: RedisServer;
  let a: Awaited<ReturnType<typeof startInstance>>;
  let b: Awaited<ReturnType<typeof startInstance>>;
  let raw: Redis;

  beforeAll(async () => {
    redis = await RedisServer.start();
    [a, b] = await Promise.all([startInstance(redis.url()), startInstance(redis.url())]);
    raw = new Redis({ host: '127.0.0.1', port: redis.port, lazyConnect: true });
    await raw.connect();
  });

  afterAll(async () => {
    raw?.disconnect();
    await Promise.all([a?.app.close(), b?.app.close()]);
    await redis?.stop();
  });

  beforeEach(async () => {
    await Promise.all([a.series.flush(), b.series.flush()]);
    await raw.flushall();
  });

  it('sums requests and sampled lib counters over every instance', async () => {
    await hit(a.base, 5);
    await hit(b.base, 3);
    // What the cache and rate-limit libs register and increment through MetricsService.
    const hits = (app: INestApplication) =>
      app
        .get(MetricsService)
        .counter({ name: 'redwing_cache_hits_total', help: 'Cache hits.', labelNames: ['tier'] });
    hits(a.app).inc({ tier: 'l1' }, 4);
    hits(b.app).inc({ tier: 'l2' }, 2);
    const decisions = (app: INestApplication) =>
      app.get(MetricsService).counter({
        name: 'redwing_ratelimit_decisions_total',
        help: 'Decisions.',
        labelNames: ['result', 'mode'],
      });
    decisions(a.app).inc({ result: 'denied', mode: 'redis' }, 7);
    decisions(a.app).inc({ result: 'allowed', mode: 'redis' }, 50);
    decisions(b.app).inc({ result: 'denied', mode: 'local' }, 1);
    expect(await a.series.flush()).toBe('ok');
    expect(await b.series.flush()).toBe('ok');

    const now = Date.now();
    const result = await a.series.query({ from: now - 60_000, to: now });
    expect(result.instances).toBe(2);
    expect(result.series.requests.sum).toBe(8);
    expect(result.series.cache_hits.sum).toBe(6);
    expect(result.series.limiter_rejections.sum).toBe(8);
    expect(result.series.cache_misses.sum).toBe(0);
    // B sees the same cluster-wide numbers.
    const fromB = await b.series.query({ from: now - 60_000, to: now });
    expect(fromB.series.requests.sum).toBe(8);

    // Only increases are added: a second flush with no new traffic adds nothing.
    await a.series.flush();
    const again = await a.series.query({ from: now - 60_000, to: Date.now() });
    expect(again.series.cache_hits.sum).toBe(6);
  });

  it('counts server errors (5xx) of served requests in errors, not client errors', async () => {
    const before = a.series.localTotals();
    for (const path of ['/items/fail/internal', '/items/fail/internal', '/items/fail/unavailable']) {
      expect((await fetch(`${a.base}${path}`)).status).toBeGreaterThanOrEqual(500);
    }
    expect((await fetch(`${a.base}/items/fail/teapot`)).status).toBe(418);
    await hit(a.base, 2);
    const totals = a.series.localTotals();
    expect([totals.requests - before.requests, totals.errors - before.errors]).toEqual([6, 3]);
    expect(await a.series.flush()).toBe('ok');
    const now = Date.now();
    const result = await a.series.query({ from: now - 60_000, to: now, names: ['requests', 'errors'] });
    expect(result.series.requests.sum).toBe(6);
    expect(result.series.errors.sum).toBe(3);
  });

  it('computes sum, average per minute and rate per second over whole minutes', async () => {
    const m = Math.floor(Date.now() / BUCKET) - 5;
    await raw.hincrby(a.series.key(m), 'requests', 60);
    await raw.hincrby(a.series.key(m + 1), 'requests', 120);
    const result = await a.series.query({ from: m * BUCKET, to: (m + 2) * BUCKET - 1, names: ['requests'] });
    expect(result.from).toBe(m * BUCKET);
    expect(result.to).toBe((m + 2) * BUCKET);
    expect(result.series.requests).toEqual({
      points: [
        [m * BUCKET, 60],
        [(m + 1) * BUCKET, 120],
      ],
      sum: 180,
      avg: 90,
      rate: 1.5,
    });
    await expect(a.series.query({ from: Date.now(), to: Date.now() - 1 })).rejects.toThrow(RangeError);
    await expect(
      a.series.query({ from: Date.now() - 2 * 86_400_000, to: Date.now() }),
    ).resolves.toBeDefined();
  });

  it('writes only hash-tagged keys of the service, each with a TTL of the retention', async () => {
    await hit(a.base, 2);
    a.series.increment('custom_events', 3);
    await a.series.flush();
    await b.series.flush();
    const keys = await raw.keys('*');
    expect(keys.length).toBeGreaterThan(0);
    for (const key of keys) {
      expect(key).toMatch(/^redwing:metrics:\{series:scenario\}:\d+$/);
      const ttl = await raw.pttl(key);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(RETENTION + BUCKET);
    }
    const now = Date.now();
    const result = await a.series.query({ from: now - 60_000, to: now, names: ['custom_events'] });
    expect(result.series.custom_events.sum).toBe(3);
    expect(() => a.series.increment('Not A Name')).toThrow(/a-z 0-9/);
  });
});

describe('series while Redis is unavailable', () => {
  let redis: RedisServer;
  let inst: Awaited<ReturnType<typeof startInstance>>;

  beforeAll(async () => {
    redis = await RedisServer.start();
    inst = await startInstance(redis.url());
  });

  afterAll(async () => {
    jest.restoreAllMocks();
    await inst?.app.close();
    await redis?.stop();
  });

  it('skips the flush and counts it, keeps serving, and writes the buffered counts after recovery', async () => {
    await inst.series.flush();
    await redis.kill('SIGKILL');
    await untilDisconnected(inst.app);
    await hit(inst.base, 4); // requests keep being served and counted locally
    expect(await inst.series.flush()).toBe('skipped');
    const text = await metricsText(inst.app);
    expect(
      sample(text, 'redwing_metrics_series_flushes_total', { outcome: 'skipped' }),
    ).toBeGreaterThanOrEqual(1);
    await expect(inst.series.query({ from: Date.now() - 60_000, to: Date.now() })).rejects.toBeInstanceOf(
      SeriesUnavailableError,
    );

    await redis.restart();
    expect(await inst.app.get(RedisClientManager).get().waitUntilReady(10_000)).toBe(true);
    await inst.app.get(RedisClientManager).get().checkHealth();
    expect(await inst.series.flush()).toBe('ok');
    const now = Date.now();
    const result = await inst.series.query({ from: now - 120_000, to: now, names: ['requests'] });
    expect(result.series.requests.sum).toBe(4);
    expect(sample(await metricsText(inst.app), 'redwing_metrics_series_dropped_total')).toBe(0);
  }, 20_000);

  it('drops (and counts) minutes older than maxBufferedMinutes while Redis stays down', async () => {
    await inst.series.flush();
    await redis.kill('SIGKILL');
    await untilDisconnected(inst.app);
    const t0 = Date.now();
    const clock = jest.spyOn(Date, 'now').mockReturnValue(t0);
    try {
      inst.series.increment('requests', 10);
      clock.mockReturnValue(t0 + 10 * BUCKET); // ten minutes later, Redis still down
      inst.series.increment('requests', 1);
      expect(await inst.series.flush()).toBe('skipped');
    } finally {
      clock.mockRestore();
    }
    expect(sample(await metricsText(inst.app), 'redwing_metrics_series_dropped_total')).toBe(10);
    await redis.restart();
    await inst.app.get(RedisClientManager).get().waitUntilReady(10_000);
  }, 20_000);
});

describe('a flush that fails after sending', () => {
  it('is counted as dropped, never re-sent (no double counts), and never holds up a request', async () => {
    const redis = await RedisServer.start();
    const inst = await startInstance(redis.url());
    try {
      await inst.series.flush();
      await hit(inst.base, 6);
      redis.pause(); // SIGSTOP: the connection stays up, nothing answers
      const flushing = inst.series.flush();
      let settled = false;
      void flushing.then(() => (settled = true));
      // The flush is in flight; a request is served meanwhile.
      await hit(inst.base, 1);
      expect(settled).toBe(false);
      expect(await flushing).toBe('failed'); // the command timeout
      expect(sample(await metricsText(inst.app), 'redwing_metrics_series_dropped_total')).toBe(6);
      redis.resume();
      // Redis now runs what was written before it stopped: the counts land once, and only once.
      await inst.app.get(RedisClientManager).get().checkHealth();
      expect(await inst.series.flush()).toBe('ok');
      const now = Date.now();
      const result = await inst.series.query({ from: now - 120_000, to: now, names: ['requests'] });
      expect(result.series.requests.sum).toBe(7);
    } finally {
      await inst.app.close();
      await redis.stop();
    }
  }, 20_000);
});

describe('shutdown', () => {
  it('writes the last counts on close and leaves no timer behind', async () => {
    const redis = await RedisServer.start();
    const timers = new TimerTracker().install();
    let inst: Awaited<ReturnType<typeof startInstance>> | undefined;
    try {
      inst = await startInstance(redis.url());
      await hit(inst.base, 3);
      await inst.app.close();
      timers.uninstall();
      expect(timers.pending().filter((t) => /libs\/(metrics|redis)\/src/.test(t))).toEqual([]);
      const raw = new Redis({ host: '127.0.0.1', port: redis.port, lazyConnect: true });
      await raw.connect();
      const minute = Math.floor(Date.now() / BUCKET);
      const values = await Promise.all(
        [minute - 1, minute].map((m) => raw.hget(`redwing:metrics:{series:scenario}:${m}`, 'requests')),
      );
      raw.disconnect();
      expect(values.reduce((n, v) => n + Number(v ?? 0), 0)).toBe(3);
    } finally {
      timers.uninstall();
      await redis.stop();
    }
  });
});
