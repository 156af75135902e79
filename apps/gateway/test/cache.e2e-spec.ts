// The cache across real gateway instances (createApp, real ports) and a real redis-server: cross-instance
// invalidation between a Fastify and an Express instance (RELIABILITY "cross-instance invalidation", p99 of
// the bound measured and asserted), the degradation contract with Redis killed under the gateway, and the
// validation of the CACHE_* variables.
import { percentile, request, type HttpResult } from '../../../libs/cache/test/helpers';
import { RedisServer, stopAll } from '../../../test/harness';
import { createApp } from '../src/bootstrap';
import type { HttpAdapterName } from '../src/config/gateway-env.schema';
import {
  gatewayEnv,
  postJson as post,
  serveGateway,
  startTwoGateways,
  stopTwoGateways,
  until,
  untilCacheSynced,
  type Gateway,
} from './support';

afterAll(() => stopAll());

const COMMAND_TIMEOUT = 300;

async function startGateway(
  adapter: HttpAdapterName,
  redisUrl: string,
  env: Record<string, string> = {},
): Promise<Gateway> {
  const gateway = await serveGateway(
    adapter,
    gatewayEnv(redisUrl, { REDIS_COMMAND_TIMEOUT: String(COMMAND_TIMEOUT), UPSTREAM_DELAY_MS: '0', ...env }),
  );
  await untilCacheSynced(gateway.base);
  return gateway;
}

const titles = (r: HttpResult): string[] => (r.body?.cards ?? []).map((c: { title: string }) => c.title);

describe('two gateway instances (Fastify A, Express B) on one Redis', () => {
  let redis: RedisServer;
  let a: Gateway;
  let b: Gateway;

  beforeAll(async () => {
    ({ redis, a, b } = await startTwoGateways(startGateway));
  }, 30_000);

  afterAll(() => stopTwoGateways({ redis, a, b }));

  it('a card added on A is on B within the bound: B never serves the old board after it (p99 over 100 writes)', async () => {
    // The invalidation itself arrives before A's response (see the service-level figure in
    // libs/cache/test/reliability.int-spec.ts); over HTTP the bound is one request on B, hence the margin.
    const BOUND_MS = 250;
    const bounds: number[] = [];
    let oldAfterBound = 0;
    let oldBeforeBound = 0;
    for (let i = 0; i < 100; i++) {
      const id = 500 + (i % 20);
      await request(`${b.base}/boards/${id}`);
      expect((await request(`${b.base}/boards/${id}`)).headers['x-cache']).toBe('HIT'); // B holds it in L1
      const title = `card ${i}`;
      expect((await post(a.base, `/boards/${id}/cards`, { title })).status).toBe(201);
      const written = performance.now();
      for (;;) {
        const res = await request(`${b.base}/boards/${id}`);
        if (titles(res).includes(title)) {
          // Until the end of the first response with the card: an upper bound that includes one request.
          bounds.push(performance.now() - written);
          break;
        }
        oldBeforeBound++;
        if (performance.now() - written > 2_000)
          throw new Error(`B still served board ${id} without "${title}" after 2 s`);
      }
      for (let j = 0; j < 3; j++)
        if (!titles(await request(`${b.base}/boards/${id}`)).includes(title)) oldAfterBound++;
    }
    process.stdout.write(
      `cross-instance invalidation (gateway, HTTP): p50 ${percentile(bounds, 50).toFixed(2)} ms, ` +
        `p99 ${percentile(bounds, 99).toFixed(2)} ms, max ${Math.max(...bounds).toFixed(2)} ms over ${bounds.length} writes; ` +
        `${oldBeforeBound} old response(s) served by B after A's response\n`,
    );
    expect(bounds).toHaveLength(100);
    expect(oldAfterBound).toBe(0);
    expect(percentile(bounds, 99)).toBeLessThanOrEqual(BOUND_MS);
  }, 60_000);

  it('a cold board requested on both instances at once is loaded once (cross-instance single-flight)', async () => {
    const before = await Promise.all(
      [a.base, b.base].map(async (base) => (await request(`${base}/cache/stats`)).body.loads),
    );
    const id = 777;
    const all = await Promise.all(
      Array.from({ length: 40 }, (_, i) => request(`${i % 2 ? a.base : b.base}/boards/${id}`)),
    );
    expect(all.every((r) => r.status === 200)).toBe(true);
    expect(new Set(all.map((r) => r.body.fetchedAt)).size).toBe(1);
    const after = await Promise.all(
      [a.base, b.base].map(async (base) => (await request(`${base}/cache/stats`)).body.loads),
    );
    expect(after[0] - before[0] + (after[1] - before[1])).toBe(1);
  });
});

describe('degradation: Redis killed under the gateway', () => {
  it('cached boards keep serving from L1, misses go to the upstream, nothing waits on Redis; recovers alone', async () => {
    const redis = await RedisServer.start();
    const gw = await startGateway('fastify', redis.url(), { UPSTREAM_DELAY_MS: '20' });
    try {
      const warm = await request(`${gw.base}/boards/42`);
      expect(warm.status).toBe(200);
      await redis.kill('SIGKILL');
      await until(
        'the gateway to notice Redis going down',
        5_000,
        async () => !(await request(`${gw.base}/cache/stats`)).body.l2.available,
        { interval: 20 },
      );
      const durations: number[] = [];
      for (let i = 0; i < 20; i++) {
        let started = performance.now();
        const hit = await request(`${gw.base}/boards/42`);
        durations.push(performance.now() - started);
        expect(hit.status).toBe(200);
        expect(hit.headers['x-cache']).toBe('HIT');
        expect(hit.text).toBe(warm.text);

        started = performance.now();
        const miss = await request(`${gw.base}/boards/${600 + i}`);
        durations.push(performance.now() - started - 20); // minus the upstream's own 20 ms
        expect(miss.status).toBe(200);
        expect(miss.headers['x-cache']).toBe('MISS');
      }
      // At most one command timeout per request, plus HTTP and scheduling slack on a loaded 2-core CI run
      // (one request took 440 ms there against a bound of 400); two waits in a row (>= 600 ms) still fail.
      expect(Math.max(...durations)).toBeLessThanOrEqual(COMMAND_TIMEOUT + 250);
      // A write during the outage still works; its eviction waits for Redis.
      expect((await post(gw.base, '/boards/42/cards', { title: 'during the outage' })).status).toBe(201);
      const stats = await request(`${gw.base}/cache/stats`);
      expect(stats.status).toBe(200);
      expect(stats.body.redis).toMatchObject({ available: false });
      expect(stats.body.invalidation.deferred).toBeGreaterThan(0);
      expect(stats.body.recommendations.map((r: { code: string }) => r.code)).toContain('redis-unavailable');
      expect((await request(`${gw.base}/health`)).status).toBe(200);

      await redis.restart();
      await until('the gateway to see Redis come back', 10_000, async () =>
        Boolean((await request(`${gw.base}/cache/stats`)).body.redis?.available),
      );
      const fresh = await request(`${gw.base}/boards/42`);
      expect(titles(fresh)).toContain('during the outage');
    } finally {
      await gw.app.close();
      await redis.stop();
    }
  }, 30_000);
});

describe('CACHE_* variables', () => {
  it('refuses an invalid value with a message naming the variable and the range', async () => {
    await expect(
      createApp({
        adapter: 'fastify',
        env: {
          REDIS_URL: 'redis://127.0.0.1:1',
          CACHE_BOARDS_TTL: 'soon',
          CACHE_L1_MAX_ENTRIES: '0',
          LOG_LEVEL: 'fatal',
        },
      }),
    ).rejects.toThrow(
      /CACHE_BOARDS_TTL must be an integer from 1 to 86400000[\s\S]*CACHE_L1_MAX_ENTRIES must be an integer from 1/,
    );
    delete process.env.CACHE_BOARDS_TTL;
    delete process.env.CACHE_L1_MAX_ENTRIES;
  });
});
