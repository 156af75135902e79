// Sentry error reporting through a real Nest app on both adapters, against a password-protected
// redis-server and a local receiver of Sentry envelopes: the route, redacted request data, the user id
// and the Redis state on each event; only server errors reported; errors thrown before the interceptor
// (a guard) still reported; with OpenTelemetry on, events carry the request's trace id and Sentry sends
// no spans or transactions of its own.
import type { INestApplication } from '@nestjs/common';
import { ApplicationConfig } from '@nestjs/core';
import { RedisClientManager } from '@redwing/redis';
import { RedisServer, stopAll } from '../../../test/harness';
import { MemorySpans } from './memory-spans';
import { SentryReceiver, waitFor, type SentryEvent } from './receivers';
import { createScenarioApp, listen, type Adapter } from './scenario-app';

const PASSWORD = 'redis-pa55-never-sent';
let redis: RedisServer;
let receiver: SentryReceiver;

beforeAll(async () => {
  [redis, receiver] = await Promise.all([
    RedisServer.start({ requirepass: PASSWORD }),
    SentryReceiver.start(),
  ]);
});

afterAll(async () => {
  await receiver?.close();
  await stopAll();
});

const exceptionOf = (e: SentryEvent) => e.exception?.values?.[0];

describe.each<Adapter>(['fastify', 'express'])('Sentry on %s', (adapter) => {
  let app: INestApplication;
  let base: string;
  const listenersBefore = process.listenerCount('uncaughtException');

  beforeAll(async () => {
    app = await createScenarioApp({
      adapter,
      redisUrl: redis.url({ password: PASSWORD }),
      metrics: { series: false, sentry: { dsn: receiver.dsn, environment: 'test' } },
    });
    base = await listen(app);
    await app.get(RedisClientManager).get().waitUntilReady(5_000);
  });

  afterAll(async () => {
    await app?.close();
    // Closing the last app closes Sentry and removes its process handlers.
    expect(process.listenerCount('uncaughtException')).toBe(listenersBefore);
  });

  beforeEach(() => receiver.clear());

  it('registers its interceptor globally, once', () => {
    expect(
      app
        .get(ApplicationConfig)
        .getGlobalInterceptors()
        .map((i) => i.constructor.name),
    ).toEqual(['ObservabilityInterceptor']);
  });

  it('reports an unhandled error with the route, redacted request data and the Redis state', async () => {
    const res = await fetch(`${base}/items/fail/type-error?token=abc123&page=2`, {
      headers: {
        authorization: 'Bearer xyz-secret-token',
        cookie: 'sid=cookie-secret-value',
        'x-api-key': 'key-secret-value',
        'user-agent': 'redwing-test',
      },
    });
    expect(res.status).toBe(500);
    const [event] = await receiver.waitForEvents(1);
    expect(exceptionOf(event)).toMatchObject({
      type: 'TypeError',
      value: 'scenario: something was undefined',
    });
    expect(event.transaction).toBe('GET /items/fail/type-error');
    expect(event.tags).toMatchObject({
      'http.route': '/items/fail/type-error',
      'http.method': 'GET',
      service: 'scenario',
      context: 'http',
    });
    expect(event.request).toMatchObject({
      method: 'GET',
      url: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\/items\/fail\/type-error$/),
      query_string: 'token=%5BFiltered%5D&page=2',
      headers: {
        authorization: '[Filtered]',
        cookie: '[Filtered]',
        'x-api-key': '[Filtered]',
        'user-agent': 'redwing-test',
      },
    });
    expect(event.contexts?.redis?.default).toMatchObject({
      state: 'ready',
      breaker: 'closed',
      status: 'up',
      url: `redis://:***@127.0.0.1:${redis.port}`,
    });
    expect(event.environment).toBe('test');
    expect(event.server_name).toBe('scenario');
    const sent = receiver.rawBodies.join('\n');
    for (const secret of [
      'xyz-secret-token',
      'cookie-secret-value',
      'key-secret-value',
      'abc123',
      PASSWORD,
    ]) {
      expect({ secret, leaked: sent.includes(secret) }).toEqual({ secret, leaked: false });
    }
  });

  it('reports server errors only: a 500 HttpException yes; 4xx and deliberate 503 no', async () => {
    expect((await fetch(`${base}/items/fail/teapot`)).status).toBe(418);
    expect((await fetch(`${base}/items/fail/unavailable`)).status).toBe(503);
    expect((await fetch(`${base}/no/such/route`)).status).toBe(404);
    expect((await fetch(`${base}/items/fail/internal`)).status).toBe(500);
    const events = await receiver.waitForEvents(1);
    await new Promise((r) => setTimeout(r, 300)); // anything else would have arrived by now
    expect(receiver.events).toHaveLength(1);
    expect(exceptionOf(events[0])).toMatchObject({ type: 'InternalServerErrorException' });
    expect(events[0].tags?.['http.route']).toBe('/items/fail/internal');
  });

  it('reports a 500 from an error thrown before the interceptor (guard), with the breaker state', async () => {
    const client = app.get(RedisClientManager).get();
    client.breaker.forceOpen();
    try {
      // The guard's INCR is refused: RedisUnavailableError from a guard, answered 500 by Nest.
      expect((await fetch(`${base}/items/5`)).status).toBe(500);
    } finally {
      client.breaker.release();
    }
    const [event] = await receiver.waitForEvents(1);
    const message = typeof event.message === 'string' ? event.message : event.message?.formatted;
    expect(message).toBe('HTTP 500 on GET /items/:id');
    expect(event.level).toBe('error');
    expect(event.tags?.['http.route']).toBe('/items/:id');
    expect(event.contexts?.redis?.default).toMatchObject({ breaker: 'forced-open', status: 'degraded' });
  });
});

describe('Sentry with OpenTelemetry on', () => {
  it('links events to the request trace and sends no spans or transactions of its own', async () => {
    receiver.clear();
    const spans = new MemorySpans();
    const app = await createScenarioApp({
      adapter: 'fastify',
      redisUrl: redis.url({ password: PASSWORD }),
      metrics: {
        series: false,
        sentry: { dsn: receiver.dsn },
        tracing: { enabled: true, spanProcessors: [spans.processor] },
      },
    });
    try {
      const base = await listen(app);
      await app.get(RedisClientManager).get().waitUntilReady(5_000);
      for (let i = 0; i < 3; i++) expect((await fetch(`${base}/items/fail/type-error`)).status).toBe(500);
      expect((await fetch(`${base}/items/1`)).status).toBe(200);
      const events = await receiver.waitForEvents(3);
      const servers = await waitFor('4 server spans', 3_000, () => {
        const found = spans.all().filter((s) => s.kind === 2);
        return found.length >= 4 && found;
      });
      // One server span per request, all ours; nobody else created spans in this process.
      expect(servers).toHaveLength(4);
      expect(new Set(spans.all().map((s) => s.scope))).toEqual(new Set(['@redwing/metrics']));
      const failedTraces = servers.filter((s) => s.status.code === 2).map((s) => s.traceId);
      expect(failedTraces).toHaveLength(3);
      expect(events.map((e) => e.contexts?.trace?.trace_id).sort()).toEqual([...failedTraces].sort());
      expect(events.map((e) => e.contexts?.otel?.trace_id).sort()).toEqual([...failedTraces].sort());
      expect(new Set(receiver.items.map((i) => i.type))).toEqual(new Set(['event']));
    } finally {
      await app.close();
    }
  });

  it('sends nothing when no DSN is configured', async () => {
    receiver.clear();
    const app = await createScenarioApp({
      adapter: 'fastify',
      redisUrl: redis.url({ password: PASSWORD }),
      metrics: { series: false, useEnv: true, env: {} },
    });
    try {
      const base = await listen(app);
      expect((await fetch(`${base}/items/fail/type-error`)).status).toBe(500);
      await new Promise((r) => setTimeout(r, 300));
      expect(receiver.envelopes).toEqual([]);
    } finally {
      await app.close();
    }
  });
});
