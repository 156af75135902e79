// GET /metrics, GET /stats/series and GET /stats/overview through the real gateway (createApp, listening on
// a real port) against real redis-server processes: valid Prometheus text (promtool check metrics) on both
// adapters, no credentials in it, series aggregated across two gateway instances, the query API's
// validation, and what happens while Redis is down.
import type { INestApplication } from '@nestjs/common';
import { MetricsConfigError, SeriesService } from '@redwing/metrics';
import { RedisClientManager } from '@redwing/redis';
import { RedisServer, stopAll } from '../../../test/harness';
import { promtoolCheck, sample, sumSamples } from '../../../libs/metrics/test/receivers';
import { createApp } from '../src/bootstrap';
import type { HttpAdapterName } from '../src/config/gateway-env.schema';
import {
  gatewayEnv,
  NO_TELEMETRY,
  poll,
  serveGateway,
  startTwoGateways,
  stopTwoGateways,
  type Gateway,
  type GatewayEnv,
} from './support';

afterAll(() => stopAll());

const PASSWORD = 'metrics-pa55-never-shown';

async function startGateway(
  adapter: HttpAdapterName,
  redisUrl: string,
  env: GatewayEnv = {},
): Promise<Gateway> {
  const gateway = await serveGateway(
    adapter,
    gatewayEnv(redisUrl, {
      OTEL_SERVICE_NAME: undefined,
      ...NO_TELEMETRY,
      // Flushed by hand in these tests.
      METRICS_SERIES_FLUSH_INTERVAL: '60000',
      METRICS_SERIES_RETENTION: undefined,
      METRICS_SERIES_ENABLED: undefined,
      ...env,
    }),
  );
  await gateway.app.get(RedisClientManager).get().waitUntilReady(5_000);
  return gateway;
}

describe.each<HttpAdapterName>(['fastify', 'express'])('GET /metrics on %s', (adapter) => {
  let redis: RedisServer;
  let app: INestApplication;
  let base: string;

  beforeAll(async () => {
    redis = await RedisServer.start({ requirepass: PASSWORD });
    ({ app, base } = await startGateway(adapter, redis.url({ password: PASSWORD })));
  });

  afterAll(async () => {
    await app?.close();
    await redis?.stop();
  });

  it('serves Prometheus text that passes promtool check metrics, with no credentials in it', async () => {
    for (let i = 0; i < 3; i++) expect((await fetch(`${base}/health/ready`)).status).toBe(200);
    expect((await fetch(`${base}/no/such/page`)).status).toBe(404);
    expect((await fetch(`${base}/stats/series?minutes=5`)).status).toBe(200);
    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const text = await res.text();

    const { ok, output } = await promtoolCheck(text);
    expect({ ok, output }).toEqual({ ok: true, output: '' });
    expect(text).not.toContain(PASSWORD);

    const requests = 'redwing_http_request_duration_seconds_count';
    expect(sample(text, requests, { method: 'GET', route: '/health/ready', status_class: '2xx' })).toBe(3);
    expect(sample(text, requests, { method: 'GET', route: 'unmatched', status_class: '4xx' })).toBe(1);
    expect(sample(text, 'redwing_metrics_service_info', { service: 'gateway' })).toBe(1);
    expect(sample(text, 'redwing_redis_up_state', { client: 'default' })).toBe(1);
    expect(sample(text, 'redwing_redis_breaker_state', { client: 'default', state: 'closed' })).toBe(1);
    // The series query above ran a pipeline of HGETALLs through the breaker-protected client.
    expect(
      sumSamples(text, 'redwing_redis_command_duration_seconds_count', { command: 'hgetall' }),
    ).toBeGreaterThan(0);
    expect(sample(text, 'redwing_redis_memory_used_bytes', { client: 'default' })).toBeGreaterThan(0);
  });

  it('answers /stats/overview with process and Redis memory and local counts', async () => {
    const res = await fetch(`${base}/stats/overview`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      service: string;
      process: { rssBytes: number };
      redis: Record<string, { usedBytes: number | null }>;
      local: Record<string, number>;
    };
    expect(body.service).toBe('gateway');
    expect(body.process.rssBytes).toBeGreaterThan(1_000_000);
    expect(body.redis.default.usedBytes).toBeGreaterThan(0);
    expect(body.local.requests).toBeGreaterThanOrEqual(1); // the 404 above; health and stats are not traffic
  });
});

describe('GET /stats/series across two gateway instances', () => {
  let redis: RedisServer;
  let a: Gateway;
  let b: Gateway;

  beforeAll(async () => {
    ({ redis, a, b } = await startTwoGateways(startGateway));
  });

  afterAll(() => stopTwoGateways({ redis, a, b }));

  it('sums the requests of every instance, leaving out health probes, scrapes and the dashboard', async () => {
    for (let i = 0; i < 4; i++) await fetch(`${a.base}/traffic/a${i}`);
    for (let i = 0; i < 6; i++) await fetch(`${b.base}/traffic/b${i}`);
    for (const path of ['/health', '/health/ready', '/metrics', '/', '/stats/overview']) {
      expect((await fetch(`${a.base}${path}`)).status).toBe(200);
    }
    expect(await a.app.get(SeriesService).flush()).toBe('ok');
    expect(await b.app.get(SeriesService).flush()).toBe('ok');

    const res = await fetch(`${b.base}/stats/series?names=requests,errors&minutes=5&agg=sum`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      instances: number;
      agg: string;
      values: Record<string, number>;
      series: Record<string, { points: Array<[number, number]>; sum: number; avg: number; rate: number }>;
    };
    expect(body.instances).toBe(2);
    expect(body.agg).toBe('sum');
    expect(body.values).toEqual({ requests: 10, errors: 0 });
    expect(body.series.requests.points).toHaveLength(6);
    expect(body.series.requests.sum).toBe(10);
    expect(body.series.requests.avg).toBeCloseTo(10 / 6, 6);
    expect(body.series.requests.rate).toBeGreaterThan(0);
    expect(Object.keys(body.series).sort()).toEqual(['errors', 'requests']);
  });

  it('validates the query', async () => {
    const bad = async (query: string) => {
      const res = await fetch(`${a.base}/stats/series?${query}`);
      return { status: res.status, message: ((await res.json()) as { message: string }).message };
    };
    expect(await bad('names=requests,nope')).toEqual({
      status: 400,
      message: expect.stringContaining('unknown series: nope'),
    });
    expect(await bad('minutes=0')).toMatchObject({
      status: 400,
      message: expect.stringContaining('minutes'),
    });
    expect(await bad('minutes=100000')).toMatchObject({ status: 400 });
    expect(await bad('agg=median')).toMatchObject({ status: 400, message: expect.stringContaining('agg') });
    expect(await bad('from=yesterday')).toMatchObject({
      status: 400,
      message: expect.stringContaining('from'),
    });
    expect(await bad(`from=${Date.now()}&to=${Date.now() - 120_000}`)).toMatchObject({ status: 400 });
    const iso = await fetch(
      `${a.base}/stats/series?from=${new Date(Date.now() - 120_000).toISOString()}&agg=rate&names=requests`,
    );
    expect(iso.status).toBe(200);
    expect(((await iso.json()) as { values: Record<string, number> }).values.requests).toBeGreaterThanOrEqual(
      0,
    );
  });

  it('answers 503 for the series while Redis is down, while requests and the overview keep working', async () => {
    await redis.kill('SIGKILL');
    try {
      const client = a.app.get(RedisClientManager).get();
      await poll(5_000, 10, () => client.getConnectionState() !== 'ready');
      const res = await fetch(`${a.base}/stats/series`);
      expect(res.status).toBe(503);
      expect(((await res.json()) as { message: string }).message).toContain('unavailable');
      expect((await fetch(`${a.base}/traffic/during-outage`)).status).toBe(404);
      const overview = await fetch(`${a.base}/stats/overview`);
      expect(overview.status).toBe(200);
      expect(await a.app.get(SeriesService).flush()).toBe('skipped');
    } finally {
      await redis.restart();
    }
    await a.app.get(RedisClientManager).get().waitUntilReady(10_000);
  }, 20_000);
});

describe('metrics configuration from the environment', () => {
  it('refuses a bad METRICS_* or SENTRY_DSN value at start-up, naming the variable and not echoing it', async () => {
    const redis = await RedisServer.start();
    const clean = {
      REDIS_URL: redis.url(),
      LOG_LEVEL: 'fatal',
      METRICS_SERIES_RETENTION: undefined,
      METRICS_SERIES_FLUSH_INTERVAL: undefined,
      METRICS_SERIES_ENABLED: undefined,
      SENTRY_DSN: undefined,
    };
    try {
      for (const [name, value] of [
        ['METRICS_SERIES_RETENTION', '5'],
        ['METRICS_SERIES_FLUSH_INTERVAL', 'soon'],
        ['METRICS_SERIES_ENABLED', 'maybe'],
      ] as const) {
        const failed = createApp({ adapter: 'fastify', env: { ...clean, [name]: value } });
        await expect(failed).rejects.toBeInstanceOf(MetricsConfigError);
        await expect(failed).rejects.toThrow(name);
      }
      // Passes the gateway's URI check, is still no DSN: the lib names it and does not print it.
      const dsn = 'https://sentry.example.com/no-key-here';
      const failed = createApp({ adapter: 'fastify', env: { ...clean, SENTRY_DSN: dsn } });
      await expect(failed).rejects.toThrow(/SENTRY_DSN is not a Sentry DSN/);
      await expect(failed).rejects.not.toThrow(dsn);
    } finally {
      for (const name of Object.keys(clean))
        if (name.startsWith('METRICS_') || name === 'SENTRY_DSN') delete process.env[name];
      await redis.stop();
    }
  });

  it('turns the series off with METRICS_SERIES_ENABLED=false', async () => {
    const redis = await RedisServer.start();
    const { app, base } = await startGateway('fastify', redis.url(), { METRICS_SERIES_ENABLED: 'false' });
    try {
      expect((await fetch(`${base}/stats/series`)).status).toBe(404);
      expect((await fetch(`${base}/stats/overview`)).status).toBe(200);
    } finally {
      await app.close();
      delete process.env.METRICS_SERIES_ENABLED;
      await redis.stop();
    }
  });
});
