// The global RateLimitGuard through real HTTP on Fastify and Express: 429 body and headers, the IETF draft
// and legacy headers, several limits, user / custom keys, cost, shadow mode, skips, module defaults, policies.
import { Controller, Get, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { RateLimit, SkipRateLimit } from '@redwing/rate-limit';
import { RedisServer, stopAll } from '../../../test/harness';
import { bootApp, counterValue, scanKeys, type Adapter, type BootedApp } from './helpers';

afterAll(() => stopAll());

interface Req {
  headers: Record<string, string | undefined>;
  user?: unknown;
}

/** Authenticates from `x-user` (never refuses); registered as an APP_GUARD before the rate-limit guard. */
@Injectable()
class HeaderAuthGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const req = context.switchToHttp().getRequest<Req>();
    const user = req.headers['x-user'];
    if (user) req.user = { id: user };
    return true;
  }
}

@Controller('t')
class LimitedController {
  @Get('fixed')
  @RateLimit({ points: 3, duration: 60_000 })
  fixed() {
    return { ok: true };
  }

  @Get('multi')
  @RateLimit(
    { name: 'burst', points: 2, duration: 1_000, algorithm: 'sliding-window' },
    { name: 'hourly', points: 10, duration: 3_600_000, algorithm: 'token-bucket' },
  )
  multi() {
    return { ok: true };
  }

  @Get('user')
  @RateLimit({ key: 'user', points: 2, duration: 60_000 })
  user() {
    return { ok: true };
  }

  @Get('custom')
  @RateLimit({
    key: (ctx) => ctx.switchToHttp().getRequest<Req>().headers['x-api-key'],
    points: 1,
    duration: 60_000,
  })
  custom() {
    return { ok: true };
  }

  @Get('cost')
  @RateLimit({
    points: 5,
    duration: 60_000,
    algorithm: 'sliding-window',
    cost: (ctx) => Number(ctx.switchToHttp().getRequest<Req>().headers['x-cost'] ?? 1),
  })
  cost() {
    return { ok: true };
  }

  @Get('shadow')
  @RateLimit({ points: 1, duration: 60_000, shadow: true })
  shadow() {
    return { ok: true };
  }

  @Get('skip')
  @SkipRateLimit()
  skip() {
    return { ok: true };
  }

  @Get('default')
  byDefault() {
    return { ok: true };
  }

  @Get('policy')
  @RateLimit('tight')
  policy() {
    return { ok: true };
  }

  @Get('policy-too')
  @RateLimit('tight')
  policyToo() {
    return { ok: true };
  }
}

@Controller('skipped')
@SkipRateLimit()
class SkippedController {
  @Get()
  free() {
    return { ok: true };
  }

  @Get('on')
  @SkipRateLimit(false)
  @RateLimit({ points: 1, duration: 60_000 })
  on() {
    return { ok: true };
  }
}

async function hit(base: string, path: string, headers: Record<string, string> = {}) {
  const res = await fetch(base + path, { headers });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
  };
}

async function statuses(base: string, path: string, n: number, headers: Record<string, string> = {}) {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await hit(base, path, headers)).status);
  return out;
}

describe.each<Adapter>(['fastify', 'express'])('RateLimitGuard on %s', (adapter) => {
  let booted: BootedApp;

  beforeAll(async () => {
    const server = await RedisServer.start();
    booted = await bootApp(
      adapter,
      { url: server.url() },
      {
        points: 4,
        duration: 60_000,
        legacyHeaders: true,
        policies: { tight: { points: 2, duration: 60_000 } },
      },
      [LimitedController, SkippedController],
      [{ provide: APP_GUARD, useClass: HeaderAuthGuard }],
    );
  });

  afterAll(() => booted?.app.close());

  it('admits `points` requests with IETF and legacy headers, then answers 429 with Retry-After and a JSON body', async () => {
    const ok = [];
    for (let i = 0; i < 3; i++) ok.push(await hit(booted.base, '/t/fixed'));
    expect(ok.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(ok.map((r) => r.headers.get('ratelimit-policy'))).toEqual(Array(3).fill('"3-per-1m";q=3;w=60'));
    expect(ok.map((r) => r.headers.get('ratelimit'))).toEqual([
      expect.stringMatching(/^"3-per-1m";r=2;t=(59|60)$/),
      expect.stringMatching(/^"3-per-1m";r=1;t=(59|60)$/),
      expect.stringMatching(/^"3-per-1m";r=0;t=(59|60)$/),
    ]);
    expect(ok.map((r) => r.headers.get('x-ratelimit-remaining'))).toEqual(['2', '1', '0']);
    expect(ok[0].headers.get('x-ratelimit-limit')).toBe('3');
    expect(Number(ok[0].headers.get('x-ratelimit-reset'))).toBeGreaterThanOrEqual(59);

    const refused = await hit(booted.base, '/t/fixed');
    expect(refused.status).toBe(429);
    expect(refused.headers.get('content-type')).toMatch(/application\/json/);
    expect(refused.body).toEqual({
      statusCode: 429,
      error: 'Too Many Requests',
      message: expect.stringMatching(/the limit "3-per-1m" allows 3 per 60 s; retry in \d+ s\.$/),
      retryAfter: expect.any(Number),
    });
    expect(refused.body.retryAfter).toBeGreaterThanOrEqual(59);
    expect(refused.body.retryAfter).toBeLessThanOrEqual(60);
    expect(refused.headers.get('retry-after')).toBe(String(refused.body.retryAfter));
    expect(refused.headers.get('ratelimit')).toMatch(/^"3-per-1m";r=0;t=/);
  });

  it('enforces several limits on one route and reports each', async () => {
    const first = await hit(booted.base, '/t/multi');
    expect(first.headers.get('ratelimit-policy')).toBe('"burst";q=2;w=1, "hourly";q=10;w=3600');
    expect(first.headers.get('ratelimit')).toMatch(/^"burst";r=1;t=1, "hourly";r=9;t=\d+$/);
    expect((await hit(booted.base, '/t/multi')).status).toBe(200);
    const refused = await hit(booted.base, '/t/multi');
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(refused.body.message).toMatch(/"burst" allows 2 per 1 s/);
    // The legacy headers describe the tightest limit.
    expect(refused.headers.get('x-ratelimit-limit')).toBe('2');
  });

  it('counts authenticated users separately (auth guard registered first), anonymous clients by address', async () => {
    expect(await statuses(booted.base, '/t/user', 3, { 'x-user': 'alice' })).toEqual([200, 200, 429]);
    expect(await statuses(booted.base, '/t/user', 3, { 'x-user': 'bob' })).toEqual([200, 200, 429]);
    expect(await statuses(booted.base, '/t/user', 3)).toEqual([200, 200, 429]);
    const keys = await scanKeys(
      booted.manager.get().command as never,
      'redwing:ratelimit:fw:LimitedController.user:*',
    );
    expect(keys.sort()).toEqual([
      'redwing:ratelimit:fw:LimitedController.user:2:60000:{ip:127.0.0.1}',
      'redwing:ratelimit:fw:LimitedController.user:2:60000:{user:alice}',
      'redwing:ratelimit:fw:LimitedController.user:2:60000:{user:bob}',
    ]);
  });

  it('counts by a key function, falling back to the address when it returns nothing', async () => {
    expect(await statuses(booted.base, '/t/custom', 2, { 'x-api-key': 'k1' })).toEqual([200, 429]);
    expect(await statuses(booted.base, '/t/custom', 2, { 'x-api-key': 'k2' })).toEqual([200, 429]);
    expect(await statuses(booted.base, '/t/custom', 2)).toEqual([200, 429]);
  });

  it('charges the cost a function computes', async () => {
    expect((await hit(booted.base, '/t/cost', { 'x-cost': '4' })).status).toBe(200);
    expect((await hit(booted.base, '/t/cost', { 'x-cost': '2' })).status).toBe(429);
    expect((await hit(booted.base, '/t/cost', { 'x-cost': '1' })).status).toBe(200);
    // A cost above the limit's points is a programming error, answered 500 and never admitted.
    expect((await hit(booted.base, '/t/cost', { 'x-cost': '9' })).status).toBe(500);
  });

  it('shadow mode decides and counts but never refuses, and sends no headers for the shadow limit', async () => {
    const before = await counterValue(booted.metrics, 'redwing_ratelimit_decisions_total', {
      result: 'shadowed',
    });
    const results = [];
    for (let i = 0; i < 4; i++) results.push(await hit(booted.base, '/t/shadow'));
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect(results[0].headers.get('ratelimit')).toBeNull();
    expect(
      await counterValue(booted.metrics, 'redwing_ratelimit_decisions_total', { result: 'shadowed' }),
    ).toBe(before + 3);
  });

  it('skips @SkipRateLimit routes and controllers; a method can opt back in', async () => {
    expect(await statuses(booted.base, '/t/skip', 8)).toEqual(Array(8).fill(200));
    expect(await statuses(booted.base, '/skipped', 8)).toEqual(Array(8).fill(200));
    expect(await statuses(booted.base, '/skipped/on', 2)).toEqual([200, 429]);
    expect((await hit(booted.base, '/t/skip')).headers.get('ratelimit')).toBeNull();
  });

  it('limits undecorated routes with the module defaults (limitAllRoutes)', async () => {
    expect(await statuses(booted.base, '/t/default', 5)).toEqual([200, 200, 200, 200, 429]);
  });

  it('shares one counter between routes that use the same named policy', async () => {
    expect(await statuses(booted.base, '/t/policy', 1)).toEqual([200]);
    expect(await statuses(booted.base, '/t/policy-too', 2)).toEqual([200, 429]);
  });

  it('passes 404s and unknown routes through untouched', async () => {
    expect((await hit(booted.base, '/nope')).status).toBe(404);
  });
});

describe('module-wide shadow mode and limitAllRoutes: false', () => {
  it('never refuses, and leaves undecorated routes alone', async () => {
    const server = await RedisServer.start();
    const booted = await bootApp(
      'fastify',
      { url: server.url() },
      { shadow: true, limitAllRoutes: false, policies: { tight: { points: 2, duration: 60_000 } } },
      [LimitedController],
    );
    try {
      expect(await statuses(booted.base, '/t/fixed', 5)).toEqual(Array(5).fill(200));
      expect(booted.service.stats().decisions).toMatchObject({ allowed: 3, shadowed: 2, denied: 0 });
      expect(await statuses(booted.base, '/t/default', 6)).toEqual(Array(6).fill(200));
      expect(booted.service.stats().decisions.allowed).toBe(3);
    } finally {
      await booted.app.close();
    }
  });
});
