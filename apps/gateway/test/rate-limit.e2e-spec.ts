// Rate limiting through the real gateway (createApp, listening on a real port) on both HTTP adapters,
// against real redis-server processes: the critical login, the general API route, the per-user route, the
// boards policy from RATE_LIMIT_BOARDS, two instances sharing counts, Redis down, and the RATE_LIMIT_* checks.
import type { INestApplication } from '@nestjs/common';
import { RateLimitService } from '@redwing/rate-limit';
import { RedisServer, stopAll } from '../../../test/harness';
import type { HttpAdapterName } from '../src/config/gateway-env.schema';
import { boardsRateLimit } from '../src/features/rate-limit.feature';
import {
  gatewayEnv,
  poll,
  serveGateway,
  startTwoGateways,
  stopTwoGateways,
  waitForReady,
  type Gateway,
  type GatewayEnv,
} from './support';

afterAll(() => stopAll());

const RATE_LIMIT_ENV = {
  RATE_LIMIT_TRUST_PROXY_HOPS: undefined,
  RATE_LIMIT_INSTANCES: undefined,
  RATE_LIMIT_IPV6_PREFIX: undefined,
  RATE_LIMIT_SHADOW: undefined,
  RATE_LIMIT_LEGACY_HEADERS: undefined,
  RATE_LIMIT_BOARDS: undefined,
};

async function startGateway(
  adapter: HttpAdapterName,
  redisUrl: string,
  env: GatewayEnv = {},
): Promise<Gateway> {
  const gateway = await serveGateway(
    adapter,
    gatewayEnv(redisUrl, { REDIS_COMMAND_TIMEOUT: '300', ...RATE_LIMIT_ENV, ...env }),
  );
  // The gateway boots without waiting for Redis; until it is connected, critical routes answer 503.
  await waitForReady(gateway.base);
  return gateway;
}

interface Res {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

async function call(
  base: string,
  path: string,
  init: { method?: string; body?: unknown; token?: string; headers?: Record<string, string> } = {},
): Promise<Res> {
  const res = await fetch(base + path, {
    method: init.method ?? 'GET',
    headers: {
      ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(init.token ? { authorization: `Bearer ${init.token}` } : {}),
      ...init.headers,
    },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
  };
}

const login = (base: string, password: string, user = 'alice') =>
  call(base, '/limited/login', { method: 'POST', body: { user, password } });

describe.each<HttpAdapterName>(['fastify', 'express'])('gateway rate limits on %s', (adapter) => {
  let redis: RedisServer;
  let app: INestApplication;
  let base: string;

  beforeAll(async () => {
    redis = await RedisServer.start();
    ({ app, base } = await startGateway(adapter, redis.url(), {
      RATE_LIMIT_BOARDS: '3',
      RATE_LIMIT_INSTANCES: '2',
      RATE_LIMIT_LEGACY_HEADERS: 'true',
    }));
  });

  afterAll(async () => {
    await app?.close();
    await redis?.stop();
  });

  it('login: successes are given back, 5 failures a minute are allowed, then 429 and a 5-minute block', async () => {
    for (let i = 0; i < 3; i++) {
      const ok = await login(base, 'demo');
      expect(ok.status).toBe(200);
      expect(ok.body).toEqual({ token: 'demo.alice' });
      expect(ok.headers.get('ratelimit-policy')).toBe('"login";q=5;w=60');
      expect(ok.headers.get('ratelimit')).toMatch(/^"login";r=4;t=60$/);
    }
    const failures = [];
    for (let i = 0; i < 5; i++) failures.push(await login(base, 'guess'));
    expect(failures.map((r) => r.status)).toEqual([401, 401, 401, 401, 401]);
    expect(failures.map((r) => r.headers.get('x-ratelimit-remaining'))).toEqual(['4', '3', '2', '1', '0']);
    const refused = await login(base, 'guess');
    expect(refused.status).toBe(429);
    expect(refused.body).toMatchObject({ statusCode: 429, error: 'Too Many Requests', retryAfter: 300 });
    expect(refused.headers.get('retry-after')).toBe('300');
    // Blocked: even the right password is refused now.
    expect((await login(base, 'demo')).status).toBe(429);
  });

  it('general API route: 60 a minute per client, IETF and legacy headers', async () => {
    const first = await call(base, '/limited/api');
    expect(first.status).toBe(200);
    expect(first.headers.get('ratelimit-policy')).toBe('"api";q=60;w=60');
    expect(first.headers.get('ratelimit')).toMatch(/^"api";r=59;t=60$/);
    expect(first.headers.get('x-ratelimit-limit')).toBe('60');
    const codes = [];
    for (let i = 0; i < 60; i++) codes.push((await call(base, '/limited/api')).status);
    expect(codes.filter((c) => c === 200)).toHaveLength(59);
    expect(codes[59]).toBe(429);
  });

  it('per-user route: counted per authenticated user (10-request bursts), 401 without a token', async () => {
    const token = ((await login(base, 'demo', 'carol')).body.token ?? 'demo.carol') as string;
    const carol = [];
    for (let i = 0; i < 11; i++) carol.push(await call(base, '/limited/me', { token }));
    expect(carol.slice(0, 10).map((r) => r.status)).toEqual(Array(10).fill(200));
    expect(carol[0].body).toEqual({ user: 'carol' });
    expect(carol[0].headers.get('ratelimit-policy')).toBe(
      '"user-burst";q=10;w=10, "user-hourly";q=1000;w=3600',
    );
    expect(carol[10].status).toBe(429);
    expect((await call(base, '/limited/me', { token: 'demo.dave' })).status).toBe(200);
    expect((await call(base, '/limited/me')).status).toBe(401);
  });

  it('the boards policy follows RATE_LIMIT_BOARDS per client per minute (boardsRateLimit())', async () => {
    expect(typeof boardsRateLimit()).toBe('function');
    const service = app.get(RateLimitService);
    const decisions = [];
    for (let i = 0; i < 4; i++)
      decisions.push(await service.consume('ip:198.51.100.7', { limits: 'boards' }));
    expect(decisions.map((d) => d.allowed)).toEqual([true, true, true, false]);
    expect(decisions[0].limits[0]).toMatchObject({ points: 3, duration: 60_000, name: 'boards' });
  });

  it('GET /boards is limited per client to RATE_LIMIT_BOARDS a minute, with the standard headers', async () => {
    const codes: number[] = [];
    let last: Awaited<ReturnType<typeof call>> | undefined;
    for (let i = 0; i < 4; i++) {
      last = await call(base, '/boards');
      codes.push(last.status);
    }
    expect(codes).toEqual([200, 200, 200, 429]);
    expect(last!.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(last!.headers.get('ratelimit-policy')).toContain('60');
  });

  it('Redis down: the critical login answers 503 + Retry-After; the API is limited in memory at 60 / 2 instances', async () => {
    await redis.kill('SIGKILL');
    const logins = [];
    for (let i = 0; i < 3; i++) logins.push(await login(base, 'demo', 'erin'));
    for (const r of logins) {
      expect(r.status).toBe(503);
      expect(r.headers.get('retry-after')).toBe('5');
      expect(r.body).toMatchObject({ statusCode: 503, error: 'Service Unavailable', retryAfter: 5 });
    }
    const codes = [];
    for (let i = 0; i < 35; i++) codes.push((await call(base, '/limited/api')).status);
    expect(codes.filter((c) => c === 200)).toHaveLength(30);
    expect(codes.slice(30)).toEqual([429, 429, 429, 429, 429]);
    // Health stays live; readiness says degraded.
    expect((await call(base, '/health')).status).toBe(200);

    await redis.restart();
    const service = app.get(RateLimitService);
    await poll(
      10_000,
      50,
      async () => (await login(base, 'demo', 'erin')).status === 200 && service.getMode() === 'redis',
    );
    expect(service.getMode()).toBe('redis');
    expect(service.stats().switches).toEqual({ toLocal: 1, toRedis: 1 });
  }, 20_000);
});

describe('two gateway instances', () => {
  it('share one count in Redis (leased slices: exactly 60 admitted, whichever instance holds the last ones)', async () => {
    const { redis, a, b } = await startTwoGateways(startGateway);
    try {
      const codes = [];
      for (let i = 0; i < 70; i++) codes.push((await call(i % 2 ? a.base : b.base, '/limited/api')).status);
      expect(codes.filter((c) => c === 200)).toHaveLength(60);
      // Near the limit one instance may still spend its (small) slice after the other was refused, so the
      // last 200 can come a few requests after the first 429; both were serving until the end, so nothing is
      // left unspent.
      expect(codes.slice(0, 55)).toEqual(Array(55).fill(200));
      expect(codes.slice(64)).toEqual(Array(6).fill(429));
    } finally {
      await stopTwoGateways({ redis, a, b });
    }
  });
});

describe('RATE_LIMIT_* configuration', () => {
  it('refuses "trust every proxy" and bad numbers at start-up, naming each variable', async () => {
    const redis = await RedisServer.start();
    try {
      await expect(
        startGateway('fastify', redis.url(), { RATE_LIMIT_TRUST_PROXY_HOPS: 'true' }),
      ).rejects.toThrow(
        /RATE_LIMIT_TRUST_PROXY_HOPS" must be the number of reverse proxies .*"trust every proxy" is refused/,
      );
      const bad = startGateway('fastify', redis.url(), {
        RATE_LIMIT_INSTANCES: '0',
        RATE_LIMIT_IPV6_PREFIX: '200',
        RATE_LIMIT_SHADOW: 'maybe',
      });
      await expect(bad).rejects.toThrow(/Invalid gateway configuration/);
      await expect(bad).rejects.toThrow(/"RATE_LIMIT_INSTANCES" must be an integer from 1 to 10000/);
      await expect(bad).rejects.toThrow(/"RATE_LIMIT_IPV6_PREFIX" must be an integer from 1 to 128/);
      await expect(bad).rejects.toThrow(/"RATE_LIMIT_SHADOW" must be true or false/);
    } finally {
      await redis.stop();
    }
  });

  it('counts the client behind RATE_LIMIT_TRUST_PROXY_HOPS=1 proxy by the address the proxy appended', async () => {
    const redis = await RedisServer.start();
    const { app, base } = await startGateway('express', redis.url(), { RATE_LIMIT_TRUST_PROXY_HOPS: '1' });
    try {
      // As the proxy would forward it: the client's own claim first, the address the proxy saw last.
      await call(base, '/limited/api', { headers: { 'x-forwarded-for': '6.6.6.6, 203.0.113.9' } });
      expect(await redis.command('EXISTS', 'redwing:ratelimit:fw:api:60:60000:{ip:203.0.113.9}')).toBe(1);
    } finally {
      await app.close();
      await redis.stop();
    }
  });
});
