// OpenTelemetry tracing of the real gateway, run as its own Node process (apps/gateway/src/main.ts, as in
// production, compiled on load) with tracing turned on by the standard variables only:
// OTEL_EXPORTER_OTLP_ENDPOINT pointing at a local OTLP/HTTP receiver and OTEL_EXPORTER_OTLP_PROTOCOL=http/json.
// Checks the span tree and attributes, the incoming traceparent, service.name from OTEL_SERVICE_NAME, and
// that spans still queued are exported when the gateway stops (SIGTERM). A separate process because the
// OTLP/HTTP exporter loads `http` with a dynamic import(), which jest's sandbox refuses.
import { resolve } from 'node:path';
import { freePort, RedisServer, stopAll } from '../../../test/harness';
import { startChildApp, type ChildApp } from '../../../libs/metrics/test/child-app';
import { OtlpReceiver, type ReceivedSpan } from '../../../libs/metrics/test/receivers';
import { waitForReady } from './support';

const MAIN = resolve(__dirname, '../src/main.ts');
const SERVER = 2;
const CLIENT = 3;

let redis: RedisServer;
let receiver: OtlpReceiver;
let gateway: ChildApp | undefined;

beforeAll(async () => {
  [redis, receiver] = await Promise.all([
    RedisServer.start({ requirepass: 'trace-pa55' }),
    OtlpReceiver.start(),
  ]);
});

afterAll(async () => {
  await gateway?.stop();
  await receiver?.close();
  await stopAll();
});

function traceparent(): { header: string; traceId: string; parentId: string } {
  const hex = (n: number) =>
    [...crypto.getRandomValues(new Uint8Array(n))].map((b) => b.toString(16).padStart(2, '0')).join('');
  const traceId = hex(16);
  const parentId = hex(8);
  return { header: `00-${traceId}-${parentId}-01`, traceId, parentId };
}

/** Whether `span` is below `ancestor` in the tree `spans`. */
function descendsFrom(spans: ReceivedSpan[], span: ReceivedSpan, ancestor: ReceivedSpan): boolean {
  let current: ReceivedSpan | undefined = span;
  for (let depth = 0; current && depth < 20; depth++) {
    if (current.parentSpanId === ancestor.spanId) return true;
    current = spans.find((s) => s.spanId === current!.parentSpanId);
  }
  return false;
}

describe('gateway tracing over OTLP/HTTP JSON', () => {
  it('exports request spans with Redis command children, honouring traceparent, flushed on SIGTERM', async () => {
    const port = await freePort();
    gateway = await startChildApp(
      MAIN,
      {
        PORT: String(port),
        HOST: '127.0.0.1',
        HTTP_ADAPTER: 'fastify',
        LOG_LEVEL: 'log',
        NO_COLOR: '1',
        REDIS_URL: redis.url({ password: 'trace-pa55' }),
        REDIS_DURABLE_URL: undefined,
        OTEL_SERVICE_NAME: 'gateway-e2e',
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_TRACES_EXPORTER: undefined,
        OTEL_SDK_DISABLED: undefined,
        // Nothing is exported on schedule: what arrives was flushed by the shutdown.
        OTEL_BSP_SCHEDULE_DELAY: '60000',
        SENTRY_DSN: undefined,
        UPSTREAM_DELAY_MS: '0',
      },
      { ready: /Listening on (http:\/\/\S+)/ },
    );
    const base = gateway.url;
    expect(gateway.output()).toContain('OpenTelemetry tracing on (OTEL_EXPORTER_OTLP_ENDPOINT)');

    // Readiness first, so the series query below finds Redis up.
    await waitForReady(base, 50);
    const series = traceparent();
    expect(
      (await fetch(`${base}/stats/series?minutes=2`, { headers: { traceparent: series.header } })).status,
    ).toBe(200);
    const ready = traceparent();
    expect((await fetch(`${base}/health/ready`, { headers: { traceparent: ready.header } })).status).toBe(
      200,
    );
    expect((await fetch(`${base}/no/such/page`)).status).toBe(404);
    // Routes of the other libs: the rate-limit guard and the cache interceptor talk to Redis.
    const limited = traceparent();
    expect((await fetch(`${base}/limited/api`, { headers: { traceparent: limited.header } })).status).toBe(
      200,
    );
    const board = traceparent();
    expect((await fetch(`${base}/boards/1`, { headers: { traceparent: board.header } })).status).toBe(200);

    await new Promise((r) => setTimeout(r, 200));
    expect(receiver.all()).toEqual([]); // still queued in the batch processor
    // Nest closes the app on SIGTERM (shutdown hooks), then re-raises the signal.
    expect(await gateway.stop()).toEqual({ code: null, signal: 'SIGTERM' });
    gateway = undefined;

    const server = await receiver.waitForSpan(
      (s) => s.traceId === series.traceId && s.kind === SERVER,
      2_000,
    );
    expect(server).toMatchObject({
      name: 'GET /stats/series',
      parentSpanId: series.parentId,
      service: 'gateway-e2e',
      attributes: {
        'http.request.method': 'GET',
        'http.route': '/stats/series',
        'http.response.status_code': 200,
        'code.function.name': 'StatsController.query',
      },
    });
    const children = receiver.children(server);
    // One HGETALL per minute bucket of the range (2 minutes back from now: 3 buckets), in one pipeline.
    expect(children.map((s) => s.name)).toEqual(['HGETALL', 'HGETALL', 'HGETALL']);
    for (const child of children) {
      expect(child).toMatchObject({
        kind: CLIENT,
        attributes: {
          'db.system.name': 'redis',
          'db.operation.name': 'HGETALL',
          'server.address': '127.0.0.1',
          'server.port': redis.port,
          'redwing.redis.client': 'default',
        },
      });
    }

    const readySpan = receiver.trace(ready.traceId);
    expect(readySpan.map((s: ReceivedSpan) => [s.name, s.parentSpanId])).toEqual([
      ['GET /health/ready', ready.parentId],
    ]);
    expect(
      receiver.all().some((s) => s.name === 'GET' && s.attributes['http.response.status_code'] === 404),
    ).toBe(true);
    // Whatever the guard and the cache do in Redis is inside the request's trace, under its span (directly,
    // or under a span of the lib's own, such as ratelimit.decision or cache.lookup).
    for (const [tp, name] of [
      [limited, 'GET /limited/api'],
      [board, 'GET /boards/:id'],
    ] as const) {
      const spans = receiver.trace(tp.traceId);
      const root = spans.find((s) => s.kind === SERVER);
      expect(root).toMatchObject({ name, parentSpanId: tp.parentId });
      const redisSpans = spans.filter((s) => s.attributes['db.system.name'] === 'redis');
      expect(redisSpans.length).toBeGreaterThan(0);
      if (name === 'GET /boards/:id') {
        const lookup = spans.find((s) => s.name === 'cache.lookup');
        expect(lookup).toMatchObject({ parentSpanId: root!.spanId });
        expect(lookup!.attributes['redwing.cache.outcome']).toEqual(expect.stringMatching(/hit|miss|stale/));
        expect(redisSpans.some((s) => descendsFrom(spans, s, lookup!))).toBe(true);
      }
      if (name === 'GET /limited/api') {
        // The guard's decision has its own span, and the limiter's Redis commands sit under it.
        const decision = spans.find((s) => s.name === 'ratelimit.decision');
        expect(decision).toMatchObject({ parentSpanId: root!.spanId });
        expect(decision!.attributes['redwing.ratelimit.allowed']).toBe(true);
        expect(redisSpans.every((s) => descendsFrom(spans, s, decision!))).toBe(true);
      }
      for (const span of spans.filter((s) => s !== root)) {
        expect(descendsFrom(spans, span, root!)).toBe(true);
      }
    }
    // Credentials never reach a span.
    expect(JSON.stringify(receiver.all())).not.toContain('trace-pa55');
    expect(receiver.otherPaths).toEqual([]);
  }, 40_000);
});
