// OpenTelemetry tracing through a real Nest app on both adapters against a real redis-server.
//
// In process (spans kept by a real SDK span processor): the span tree request → guard decision → Redis
// command and request → cache lookup → Redis command, context kept across body parsing, incoming
// `traceparent` honoured, errors recorded, no spans for Redis commands outside a request, nothing at all
// when tracing is off.
// In a child process (plain Node, as in production): tracing turned on only by OTEL_* variables and
// exported by @opentelemetry/sdk-node over OTLP/HTTP JSON to a local receiver. Jest's sandbox cannot run
// that exporter (it loads `http` with a dynamic import()), hence the separate process.
import { request } from 'node:http';
import { join } from 'node:path';
import type { INestApplication } from '@nestjs/common';
import { RedisClientManager } from '@redwing/redis';
import { RedisServer, stopAll } from '../../../test/harness';
import { isTracingActive, TracingService } from '../src';
import { startChildApp, type ChildApp } from './child-app';
import { MemorySpans } from './memory-spans';
import { OtlpReceiver, waitFor, type ReceivedSpan, type SpanStore } from './receivers';
import { createScenarioApp, listen, type Adapter } from './scenario-app';

const INTERNAL = 1;
const SERVER = 2;
const CLIENT = 3;
const ERROR = 2;

let redis: RedisServer;

beforeAll(async () => {
  redis = await RedisServer.start();
});

afterAll(() => stopAll());

function traceparent(): { header: string; traceId: string; parentId: string } {
  const hex = (n: number) =>
    [...crypto.getRandomValues(new Uint8Array(n))].map((b) => b.toString(16).padStart(2, '0')).join('');
  const traceId = hex(16);
  const parentId = hex(8);
  return { header: `00-${traceId}-${parentId}-01`, traceId, parentId };
}

function only(spans: ReceivedSpan[], name: string): ReceivedSpan {
  const found = spans.filter((s) => s.name === name);
  expect(found.map((s) => s.name)).toEqual([name]);
  return found[0];
}

/** GET /items/42 with a traceparent, then the full tree of that request, asserted. */
async function assertItemTree(store: SpanStore, base: string): Promise<void> {
  const tp = traceparent();
  const res = await fetch(`${base}/items/42?token=s3cr3t`, { headers: { traceparent: tp.header } });
  expect(res.status).toBe(200);
  const server = await store.waitForSpan((s) => s.kind === SERVER && s.traceId === tp.traceId);
  const spans = await waitFor('5 spans of the trace', 3_000, () => {
    const trace = store.trace(tp.traceId);
    return trace.length >= 5 && trace;
  });
  expect(server).toMatchObject({
    name: 'GET /items/:id',
    parentSpanId: tp.parentId,
    service: 'scenario',
    scope: '@redwing/metrics',
    attributes: {
      'http.request.method': 'GET',
      'http.route': '/items/:id',
      'http.response.status_code': 200,
      'code.function.name': 'ItemsController.get',
    },
  });
  expect(server.status.code ?? 0).not.toBe(ERROR);

  const children = store.children(server);
  expect(children.map((s) => s.name).sort()).toEqual(['cache.lookup', 'ratelimit.decision']);
  const decision = only(children, 'ratelimit.decision');
  const lookup = only(children, 'cache.lookup');
  expect(decision).toMatchObject({ kind: INTERNAL, attributes: { 'redwing.ratelimit.outcome': 'allowed' } });
  expect(lookup).toMatchObject({
    kind: INTERNAL,
    attributes: { 'redwing.cache.result': 'miss', 'redwing.cache.profile': 'items' },
  });
  const incr = only(store.children(decision), 'INCR');
  const get = only(store.children(lookup), 'GET');
  for (const cmd of [incr, get]) {
    expect(cmd).toMatchObject({
      kind: CLIENT,
      attributes: {
        'db.system.name': 'redis',
        'db.operation.name': cmd.name,
        'server.address': '127.0.0.1',
        'server.port': redis.port,
        'db.namespace': '0',
        'redwing.redis.client': 'default',
      },
    });
  }
  expect(spans).toHaveLength(5);
  // Raw paths, ids and query strings are never recorded.
  const everything = JSON.stringify(spans);
  expect(everything).not.toContain('s3cr3t');
  expect(everything).not.toContain('/items/42');
}

/**
 * POST whose JSON body arrives in two parts 150 ms apart, so body parsing continues from a socket event
 * (outside the request's async context): the handler's SET must still be a child of the request span.
 */
async function assertPostTree(store: SpanStore, base: string): Promise<void> {
  const tp = traceparent();
  const body = JSON.stringify({ title: 'x'.repeat(30_000) });
  const { port } = new URL(base);
  const status = await new Promise<number>((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: Number(port),
        method: 'POST',
        path: '/items/7',
        headers: {
          traceparent: tp.header,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.write(body.slice(0, 1_000));
    setTimeout(() => req.end(body.slice(1_000)), 150);
  });
  expect(status).toBe(201);
  const server = await store.waitForSpan((s) => s.kind === SERVER && s.traceId === tp.traceId);
  await waitFor('4 spans of the trace', 3_000, () => store.trace(tp.traceId).length >= 4);
  expect(server.name).toBe('POST /items/:id');
  expect(
    store
      .children(server)
      .map((s) => s.name)
      .sort(),
  ).toEqual(['SET', 'ratelimit.decision']);
}

describe.each<Adapter>(['fastify', 'express'])('tracing in process on %s', (adapter) => {
  let app: INestApplication;
  let base: string;
  let store: MemorySpans;

  beforeAll(async () => {
    store = new MemorySpans();
    app = await createScenarioApp({
      adapter,
      redisUrl: redis.url(),
      metrics: { series: false, tracing: { enabled: true, spanProcessors: [store.processor] } },
    });
    base = await listen(app);
    await app.get(RedisClientManager).get().waitUntilReady(5_000);
    expect(app.get(TracingService).enabled).toBe(true);
  });

  afterAll(async () => {
    await app?.close();
    // The last app to close shuts the SDK down and unregisters the globals.
    expect(isTracingActive()).toBe(false);
  });

  beforeEach(() => store.clear());

  it('honours traceparent and nests guard decision, cache lookup and Redis commands under the request span', () =>
    assertItemTree(store, base));

  it('keeps the request context across JSON body parsing (POST)', () => assertPostTree(store, base));

  it('starts a new trace without traceparent; records errors; names unmatched requests by method only', async () => {
    expect((await fetch(`${base}/items/fail/type-error`)).status).toBe(500);
    expect((await fetch(`${base}/items/fail/wrongtype`)).status).toBe(500);
    expect((await fetch(`${base}/nothing/here`)).status).toBe(404);
    expect((await fetch(`${base}/items/1`, { headers: { 'x-deny': '1' } })).status).toBe(403);

    const failed = await store.waitForSpan((s) => s.name === 'GET /items/fail/type-error');
    expect(failed.parentSpanId).toBe('');
    expect(failed.status.code).toBe(ERROR);
    expect(failed.attributes['error.type']).toBe('TypeError');
    expect(failed.events.find((e) => e.name === 'exception')?.attributes['exception.type']).toBe('TypeError');

    const hget = await store.waitForSpan((s) => s.name === 'HGET');
    expect(hget.status.code).toBe(ERROR);
    expect(hget.attributes['redwing.redis.outcome']).toBe('reply-error');

    const unmatched = await store.waitForSpan(
      (s) => s.kind === SERVER && s.attributes['http.response.status_code'] === 404,
    );
    expect(unmatched.name).toBe('GET');
    expect(unmatched.attributes['http.route']).toBeUndefined();
    expect(unmatched.status.code ?? 0).not.toBe(ERROR);

    // Rejected by the guard: the request span has its route and the denied decision as a child.
    const denied = await store.waitForSpan(
      (s) => s.kind === SERVER && s.attributes['http.response.status_code'] === 403,
    );
    expect(denied.name).toBe('GET /items/:id');
    expect(store.children(denied).map((s) => [s.name, s.attributes['redwing.ratelimit.outcome']])).toEqual([
      ['ratelimit.decision', 'denied'],
    ]);
  });

  it('does not trace Redis commands sent outside any span (health PINGs, background work)', async () => {
    const client = app.get(RedisClientManager).get();
    await client.command.set('outside', '1');
    await client.checkHealth();
    expect(store.all().filter((s) => s.name === 'SET' || s.name === 'PING')).toEqual([]);
  });
});

describe('tracing off', () => {
  it('installs no tracer, keeps withSpan a plain call, records nothing', async () => {
    const store = new MemorySpans();
    // No tracing option and no OTEL_* variable in the environment the module reads.
    const app = await createScenarioApp({
      adapter: 'fastify',
      redisUrl: redis.url(),
      metrics: { series: false, useEnv: true, env: { OTEL_SERVICE_NAME: 'x' } },
    });
    try {
      const base = await listen(app);
      await app.get(RedisClientManager).get().waitUntilReady(5_000);
      expect(app.get(TracingService).enabled).toBe(false);
      expect(isTracingActive()).toBe(false);
      expect(app.get(RedisClientManager).events.tracer).toBeNull();
      expect((await fetch(`${base}/items/1`)).status).toBe(200);
      expect(store.all()).toEqual([]);
    } finally {
      await app.close();
    }
  });
});

describe('OTLP/HTTP JSON export from a plain Node process, configured by OTEL_* variables only', () => {
  let receiver: OtlpReceiver;
  const children: ChildApp[] = [];

  beforeAll(async () => {
    receiver = await OtlpReceiver.start();
  });

  afterAll(async () => {
    await Promise.all(children.map((c) => c.stop()));
    await receiver?.close();
  });

  it.each<Adapter>(['fastify', 'express'])(
    'exports the span tree on %s',
    async (adapter) => {
      receiver.clear();
      const child = await startChildApp(join(__dirname, 'fixtures/traced-scenario.ts'), {
        ADAPTER: adapter,
        REDIS_URL: redis.url(),
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_BSP_SCHEDULE_DELAY: '50',
        OTEL_TRACES_EXPORTER: undefined,
        OTEL_SDK_DISABLED: undefined,
      });
      children.push(child);
      await assertItemTree(receiver, child.url);
      await assertPostTree(receiver, child.url);
      expect([...receiver.contentTypes]).toEqual(['application/json']);
      // Only traces: no OTLP metrics or logs pipelines are set up.
      expect(receiver.otherPaths).toEqual([]);
      expect(await child.stop()).toEqual({ code: 0, signal: null });
    },
    40_000,
  );
});
