// Liveness and readiness through the real gateway (createApp, listening on a real port) on both HTTP
// adapters, against real redis-server processes: password redaction, a Redis crash and its recovery, and
// booting with no Redis at all.
import type { INestApplication } from '@nestjs/common';
import { freePort, RedisServer, stopAll } from '../../../test/harness';
import { HealthService } from '../src/health/health.service';
import type { HttpAdapterName } from '../src/config/gateway-env.schema';
import { gatewayEnv, getJson, serveGateway, until, type Gateway } from './support';

const HEALTH_CHECK_INTERVAL = 200;

afterAll(() => stopAll());
const PASSWORD = 'pa55-w0rd-never-shown';

interface Readiness {
  status: string;
  redis: Record<
    string,
    { state: string; breaker: string; status: string; latencyMs: number | null; url: string }
  >;
  uptimeMs: number;
}

/** Polls readiness until `predicate` holds; returns the body and how long it took. */
async function readinessUntil(
  base: string,
  predicate: (r: Readiness) => boolean,
  timeout: number,
): Promise<{ body: Readiness; elapsed: number }> {
  const started = Date.now();
  let last: Readiness | undefined;
  const body = await until(
    'readiness to change',
    timeout,
    async () => {
      const { status, body } = await getJson<Readiness>(base, '/health/ready');
      expect(status).toBe(200);
      last = body;
      return predicate(body) && body;
    },
    { interval: 25, details: () => `last: ${JSON.stringify(last)}` },
  );
  return { body, elapsed: Date.now() - started };
}

function startGateway(adapter: HttpAdapterName, redisUrl: string): Promise<Gateway> {
  return serveGateway(
    adapter,
    gatewayEnv(redisUrl, { REDIS_HEALTH_CHECK_INTERVAL: String(HEALTH_CHECK_INTERVAL) }),
  );
}

describe.each<HttpAdapterName>(['fastify', 'express'])('health on %s', (adapter) => {
  describe('with Redis (password-protected)', () => {
    let redis: RedisServer;
    let app: INestApplication;
    let base: string;

    beforeAll(async () => {
      redis = await RedisServer.start({ requirepass: PASSWORD });
      ({ app, base } = await startGateway(adapter, redis.url()));
    });

    afterAll(async () => {
      await app?.close();
      await redis?.stop();
    });

    it('answers liveness with 200 {status: ok}', async () => {
      const { status, body } = await getJson(base, '/health');
      expect(status).toBe(200);
      expect(body).toEqual({ status: 'ok' });
    });

    it('is ready with the client state, breaker, latency and a redacted URL', async () => {
      const { body } = await readinessUntil(base, (r) => r.status === 'ok', 5_000);
      expect(body.redis.default).toMatchObject({ state: 'ready', breaker: 'closed', status: 'up' });
      expect(typeof body.redis.default.latencyMs).toBe('number');
      expect(body.uptimeMs).toBeGreaterThan(0);
      const { text } = await getJson(base, '/health/ready');
      expect(text).not.toContain(PASSWORD);
      expect(body.redis.default.url).toBe(`redis://:***@127.0.0.1:${redis.port}`);
    });

    it('says degraded within one health-check interval of a Redis crash, stays live, and recovers alone', async () => {
      await readinessUntil(base, (r) => r.status === 'ok', 5_000);
      await redis.kill('SIGKILL');
      // One interval, plus the time a PING takes to fail on a dead socket and a little scheduling slack.
      const down = await readinessUntil(base, (r) => r.status === 'degraded', HEALTH_CHECK_INTERVAL + 800);
      expect(down.elapsed).toBeLessThanOrEqual(HEALTH_CHECK_INTERVAL + 800);
      expect(down.body.redis.default.status).toBe('degraded');
      expect(down.body.redis.default.url).not.toContain(PASSWORD);

      const live = await getJson(base, '/health');
      expect(live.status).toBe(200);

      await redis.restart();
      const up = await readinessUntil(base, (r) => r.status === 'ok', 10_000);
      expect(up.body.redis.default).toMatchObject({ state: 'ready', status: 'up' });
    }, 20_000);
  });

  describe('booting without Redis', () => {
    let redis: RedisServer | undefined;
    let app: INestApplication;
    let base: string;
    let port: number;
    let bootMs: number;

    beforeAll(async () => {
      port = await freePort();
      const started = Date.now();
      ({ app, base } = await startGateway(adapter, `redis://127.0.0.1:${port}`));
      bootMs = Date.now() - started;
    });

    afterAll(async () => {
      await app?.close();
      await redis?.stop();
    });

    it('serves HTTP within 5 s', async () => {
      expect(bootMs).toBeLessThanOrEqual(5_000);
      const { status, body } = await getJson(base, '/health');
      expect(status).toBe(200);
      expect(body).toEqual({ status: 'ok' });
    });

    it('reports degraded readiness with 200', async () => {
      const { status, body } = await getJson<Readiness>(base, '/health/ready');
      expect(status).toBe(200);
      expect(body.status).toBe('degraded');
      expect(body.redis.default.state).not.toBe('ready');
      expect(body.redis.default.url).toBe(`redis://127.0.0.1:${port}`);
    });

    it('becomes ready by itself once Redis starts on that port', async () => {
      redis = await RedisServer.start({ port });
      const { body } = await readinessUntil(base, (r) => r.status === 'ok', 10_000);
      expect(body.redis.default).toMatchObject({ state: 'ready', breaker: 'closed', status: 'up' });
    }, 15_000);
  });
});

describe('with a durable client (REDIS_DURABLE_URL)', () => {
  it('reports both clients, and is degraded when only the durable one is down', async () => {
    const [cache, durable] = await Promise.all([RedisServer.start(), RedisServer.start()]);
    const { app, base } = await serveGateway('fastify', {
      REDIS_URL: cache.url(),
      REDIS_DURABLE_URL: durable.url(),
      REDIS_HEALTH_CHECK_INTERVAL: String(HEALTH_CHECK_INTERVAL),
      LOG_LEVEL: 'fatal',
    });
    try {
      const { body } = await readinessUntil(base, (r) => r.status === 'ok', 5_000);
      expect(Object.keys(body.redis).sort()).toEqual(['default', 'durable']);
      expect(body.redis.durable.url).toBe(durable.url());
      await durable.kill('SIGKILL');
      const down = await readinessUntil(base, (r) => r.status === 'degraded', 2_000);
      expect(down.body.redis.default.status).toBe('up');
      expect(down.body.redis.durable.status).toBe('degraded');
    } finally {
      await app.close();
      await Promise.all([cache.stop(), durable.stop()]);
    }
  });
});

describe('readiness during shutdown', () => {
  it('answers 503 once the app is closing, while HTTP still serves', async () => {
    const redis = await RedisServer.start();
    const { app, base } = await startGateway('fastify', redis.url());
    try {
      await readinessUntil(base, (r) => r.status === 'ok', 5_000);
      // Nest runs onModuleDestroy hooks before it closes the HTTP server; this is the app in that window.
      app.get(HealthService).onModuleDestroy();
      const res = await fetch(`${base}/health/ready`);
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({ status: 'unavailable', reason: 'shutting-down' });
      expect((await fetch(`${base}/health`)).status).toBe(200);
    } finally {
      await app.close();
      await redis.stop();
    }
  });
});
