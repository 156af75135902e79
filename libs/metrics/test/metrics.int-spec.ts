// HTTP RED metrics and Redis client metrics through a real Nest app on both adapters, against a real
// redis-server: route templates (never raw paths), status classes, 404s and guard rejections, command
// latency and error outcomes, breaker state and transitions, fallbacks, memory, and `promtool check
// metrics` on the result.
import type { INestApplication } from '@nestjs/common';
import { ApplicationConfig } from '@nestjs/core';
import { RedisClientManager } from '@redwing/redis';
import { RedisServer, stopAll } from '../../../test/harness';
import { MetricsService } from '../src';
import { parseExposition, promtoolCheck, sample, sumSamples } from './receivers';
import { createScenarioApp, listen, type Adapter } from './scenario-app';

afterAll(() => stopAll());

const DURATION = 'redwing_http_request_duration_seconds_count';
const COMMANDS = 'redwing_redis_command_duration_seconds_count';
const ERRORS = 'redwing_redis_command_errors_total';

async function scrape(base: string): Promise<string> {
  const res = await fetch(`${base}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return res.text();
}

describe.each<Adapter>(['fastify', 'express'])('metrics on %s', (adapter) => {
  let redis: RedisServer;
  let app: INestApplication;
  let base: string;

  beforeAll(async () => {
    redis = await RedisServer.start();
    app = await createScenarioApp({ adapter, redisUrl: redis.url(), metrics: { series: false } });
    base = await listen(app);
    await app.get(RedisClientManager).get().waitUntilReady(5_000);
  });

  afterAll(async () => {
    await app?.close();
    await redis?.stop();
  });

  it('labels requests by method, route template and status class — never by raw path', async () => {
    for (const id of ['1', '2', '3']) expect((await fetch(`${base}/items/${id}`)).status).toBe(200);
    const post = await fetch(`${base}/items/9`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ title: 'card' }),
    });
    expect(post.status).toBe(201);
    expect((await fetch(`${base}/items/4`, { headers: { 'x-deny': '1' } })).status).toBe(403);
    expect((await fetch(`${base}/no/such/route-123`)).status).toBe(404);
    expect((await fetch(`${base}/items/fail/type-error`)).status).toBe(500);

    const text = await scrape(base);
    const route = '/items/:id';
    expect(sample(text, DURATION, { method: 'GET', route, status_class: '2xx' })).toBe(3);
    expect(sample(text, DURATION, { method: 'POST', route, status_class: '2xx' })).toBe(1);
    // The guard rejected it before any interceptor ran; it is still counted, under its route.
    expect(sample(text, DURATION, { method: 'GET', route, status_class: '4xx' })).toBe(1);
    expect(sample(text, DURATION, { method: 'GET', route: 'unmatched', status_class: '4xx' })).toBe(1);
    expect(
      sample(text, DURATION, { method: 'GET', route: '/items/fail/type-error', status_class: '5xx' }),
    ).toBe(1);
    for (const raw of ['/items/1', '/items/9', 'route-123', '/no/such']) expect(text).not.toContain(raw);
    const routes = new Set(
      parseExposition(text)
        .filter((s) => s.name === DURATION)
        .map((s) => s.labels.route),
    );
    expect([...routes].sort()).toEqual(['/items/:id', '/items/fail/type-error', 'unmatched'].sort());
    expect(sample(text, 'redwing_http_requests_in_flight_current')).toBe(1); // the scrape itself
  });

  it('counts Redis commands per client and command, and errors by outcome', async () => {
    const before = await scrape(base);
    const n = 7;
    for (let i = 0; i < n; i++) expect((await fetch(`${base}/items/c${i}`)).status).toBe(200);
    expect((await fetch(`${base}/items/fail/wrongtype`)).status).toBe(500);
    const after = await scrape(base);
    const delta = (name: string, labels: Record<string, string>) =>
      sumSamples(after, name, labels) - sumSamples(before, name, labels);
    // Each item request: one INCR in the guard, one GET in the handler; the wrongtype route: INCR, SET, HGET.
    expect(delta(COMMANDS, { client: 'default', command: 'get' })).toBe(n);
    expect(delta(COMMANDS, { client: 'default', command: 'incr' })).toBe(n + 1);
    expect(delta(COMMANDS, { client: 'default', command: 'hget' })).toBe(1);
    expect(delta(ERRORS, { client: 'default', command: 'hget', outcome: 'reply-error' })).toBe(1);
    expect(delta(ERRORS, { client: 'default', command: 'get' })).toBe(0);
  });

  it('shows breaker state and transitions, and counts refused commands as unavailable', async () => {
    const client = app.get(RedisClientManager).get();
    const before = await scrape(base);
    expect(sample(before, 'redwing_redis_breaker_state', { client: 'default', state: 'closed' })).toBe(1);
    client.breaker.forceOpen();
    try {
      // The guard's INCR is refused before it is sent: the request fails, the refusal is counted.
      expect((await fetch(`${base}/items/x`)).status).toBe(500);
      const open = await scrape(base);
      expect(sample(open, 'redwing_redis_breaker_state', { client: 'default', state: 'forced-open' })).toBe(
        1,
      );
      expect(sample(open, 'redwing_redis_breaker_state', { client: 'default', state: 'closed' })).toBe(0);
      expect(
        sample(open, 'redwing_redis_breaker_transitions_total', {
          client: 'default',
          from: 'closed',
          to: 'forced-open',
        }),
      ).toBe(1);
      expect(
        sumSamples(open, ERRORS, { command: 'incr', outcome: 'unavailable' }) -
          sumSamples(before, ERRORS, { command: 'incr', outcome: 'unavailable' }),
      ).toBe(1);
      // Refusals take no time and are not latency observations.
      expect(sumSamples(open, COMMANDS, { command: 'incr' })).toBe(
        sumSamples(before, COMMANDS, { command: 'incr' }),
      );
    } finally {
      client.breaker.release();
    }
    const closed = await scrape(base);
    expect(sample(closed, 'redwing_redis_breaker_state', { client: 'default', state: 'closed' })).toBe(1);
  });

  it('counts fallback activations reported by libs, and reads Redis memory', async () => {
    const client = app.get(RedisClientManager).get();
    client.reportFallback('cache', 'get', 'breaker-open');
    client.reportFallback('cache', 'get', 'disconnected');
    client.reportFallback('rate-limit', 'consume', 'disconnected');
    const text = await scrape(base);
    const fallbacks = 'redwing_redis_fallbacks_total';
    expect(sample(text, fallbacks, { client: 'default', lib: 'cache', operation: 'get' })).toBe(2);
    expect(sample(text, fallbacks, { client: 'default', lib: 'rate-limit', operation: 'consume' })).toBe(1);
    expect(sample(text, 'redwing_redis_memory_used_bytes', { client: 'default' })).toBeGreaterThan(100_000);
    expect(sample(text, 'redwing_redis_memory_max_bytes', { client: 'default' })).toBe(0);
    expect(sample(text, 'redwing_redis_up_state', { client: 'default' })).toBe(1);
    expect(sample(text, 'redwing_redis_ping_latency_seconds', { client: 'default' })).toBeGreaterThan(0);
    expect(sample(text, 'redwing_metrics_service_info', { service: 'scenario' })).toBe(1);
  });

  it('serves an exposition that passes promtool check metrics, including metrics libs register', async () => {
    const metrics = app.get(MetricsService);
    // What the cache and rate-limit libs register through the API, with labels.
    metrics
      .counter({ name: 'redwing_cache_hits_total', help: 'Cache hits.', labelNames: ['tier'] })
      .inc({ tier: 'l1' });
    metrics
      .histogram({ name: 'redwing_cache_load_duration_seconds', help: 'Loader time.', buckets: [0.01, 0.1] })
      .observe(0.05);
    const text = await scrape(base);
    const { ok, output } = await promtoolCheck(text);
    expect({ ok, output }).toEqual({ ok: true, output: '' });
    expect(text).toContain('process_cpu_seconds_total');
  });

  it('adds no global interceptor while tracing and Sentry are off (requests pay for no Observable chain)', () => {
    expect(app.get(ApplicationConfig).getGlobalInterceptors()).toEqual([]);
  });

  it('checks the test itself: promtool rejects a broken exposition', async () => {
    const broken =
      '# HELP redwing_bad_seconds x\n# TYPE redwing_bad_seconds counter\nredwing_bad_seconds 1\n';
    const { ok, output } = await promtoolCheck(broken);
    expect(ok).toBe(false);
    expect(output).toContain('_total');
  });
});

describe('label bounds with series kept per route and command', () => {
  it('counts templates past http.maxRoutes under `other`, and every later request of theirs there too', async () => {
    const redis = await RedisServer.start();
    const app = await createScenarioApp({
      adapter: 'fastify',
      redisUrl: redis.url(),
      metrics: { series: false, http: { maxRoutes: 2 }, redis: { maxCommands: 1 } },
    });
    try {
      const base = await listen(app);
      await app.get(RedisClientManager).get().waitUntilReady(5_000);
      const before = await scrape(base); // `/metrics` is the first template seen: one of the two
      expect((await fetch(`${base}/items/1`)).status).toBe(200); // the second
      for (let i = 0; i < 3; i++) expect((await fetch(`${base}/items/fail/type-error`)).status).toBe(500);
      expect((await fetch(`${base}/items/fail/internal`)).status).toBe(500);
      expect((await fetch(`${base}/items/fail/teapot`)).status).toBe(418);
      const n = 4;
      for (let i = 0; i < n; i++) expect((await fetch(`${base}/items/k${i}`)).status).toBe(200);
      const text = await scrape(base);
      expect(sample(text, DURATION, { method: 'GET', route: '/items/:id', status_class: '2xx' })).toBe(n + 1);
      expect(sample(text, DURATION, { method: 'GET', route: 'other', status_class: '5xx' })).toBe(4);
      expect(sample(text, DURATION, { method: 'GET', route: 'other', status_class: '4xx' })).toBe(1);
      expect(sample(text, DURATION, { method: 'GET', route: '/metrics', status_class: '2xx' })).toBe(1);
      const routes = new Set(
        parseExposition(text)
          .filter((x) => x.name === DURATION)
          .map((x) => x.labels.route),
      );
      expect([...routes].sort()).toEqual(['/items/:id', '/metrics', 'other']);
      // One command label of its own per client, the rest `other`; no observation lost on the way.
      const commands = new Set(
        parseExposition(text)
          .filter((x) => x.name === COMMANDS)
          .map((x) => x.labels.command),
      );
      expect(commands.size).toBe(2);
      expect(commands.has('other')).toBe(true);
      // Each item request sends an INCR and a GET: at most one of the two has a label of its own.
      const otherDelta =
        sumSamples(text, COMMANDS, { command: 'other' }) - sumSamples(before, COMMANDS, { command: 'other' });
      expect(otherDelta).toBeGreaterThanOrEqual(n + 1);
    } finally {
      await app.close();
      await redis.stop();
    }
  });
});

describe('connection state metrics through a Redis crash', () => {
  it('flips connection state and up, and comes back', async () => {
    const redis = await RedisServer.start();
    const app = await createScenarioApp({
      adapter: 'fastify',
      redisUrl: redis.url(),
      metrics: { series: false },
    });
    try {
      const base = await listen(app);
      await app.get(RedisClientManager).get().waitUntilReady(5_000);
      const up = await scrape(base);
      expect(sample(up, 'redwing_redis_connection_state', { client: 'default', state: 'ready' })).toBe(1);
      await redis.kill('SIGKILL');
      const degraded = await pollScrape(
        base,
        (t) => sample(t, 'redwing_redis_up_state', { client: 'default' }) === 0,
      );
      expect(sample(degraded, 'redwing_redis_connection_state', { client: 'default', state: 'ready' })).toBe(
        0,
      );
      await redis.restart();
      const back = await pollScrape(
        base,
        (t) => sample(t, 'redwing_redis_up_state', { client: 'default' }) === 1,
      );
      expect(sample(back, 'redwing_redis_connection_state', { client: 'default', state: 'ready' })).toBe(1);
    } finally {
      await app.close();
      await redis.stop();
    }
  });
});

async function pollScrape(
  base: string,
  predicate: (text: string) => boolean,
  timeout = 5_000,
): Promise<string> {
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    const text = await scrape(base);
    if (predicate(text)) return text;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`condition not met within ${timeout} ms`);
}
