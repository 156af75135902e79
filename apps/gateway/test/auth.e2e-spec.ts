// Login with server-side sessions through the real gateway (DESIGN §4 route contract), against real
// redis-server processes: two instances sharing sessions (A on Fastify, B on Express), log out everywhere
// across them, CSRF on unsafe requests with a session cookie, per-user board cache keys from the session,
// the demo bearer token still working (the session wins), login rate limits, an outage, and no session id,
// cookie or CSRF token in the logs or /metrics.
import { SessionService } from '@redwing/session';
import { SentryReceiver } from '../../../libs/metrics/test/receivers';
import { CapturingLogger, RedisServer, stopAll, waitFor } from '../../../test/harness';
import { createApp } from '../src/bootstrap';
import type { HttpAdapterName } from '../src/config/gateway-env.schema';
import {
  gatewayEnv,
  NO_TELEMETRY,
  serveGateway,
  startTwoGateways,
  stopTwoGateways,
  waitForReady,
  type Gateway,
  type GatewayEnv,
  type TwoGateways,
} from './support';

afterAll(() => stopAll());

const SESSION_ENV: GatewayEnv = {
  ...NO_TELEMETRY,
  SESSION_KEYS: 'e2e-session-key-0123456789abcdefghijklmnopqrstuvwxyz',
  AUTH_DEMO_USERS: 'alice:wonderland,bob:builder,carol:c:with:colons',
  SESSION_IDLE_TIMEOUT: undefined,
  SESSION_ABSOLUTE_TIMEOUT: undefined,
  SESSION_TOUCH_INTERVAL: undefined,
  SESSION_COOKIE_SECURE: undefined,
  REDIS_COMMAND_TIMEOUT: '300',
};

async function start(adapter: HttpAdapterName, redisUrl: string, env: GatewayEnv = {}): Promise<Gateway> {
  const gateway = await serveGateway(adapter, gatewayEnv(redisUrl, { ...SESSION_ENV, ...env }));
  await waitForReady(gateway.base);
  return gateway;
}

interface Reply {
  status: number;
  headers: Headers;
  body: Record<string, unknown> | null;
  /** `name=value` of the session cookie set by this response, if any. */
  cookie?: string;
}

async function call(
  base: string,
  path: string,
  init: {
    method?: string;
    body?: unknown;
    cookie?: string;
    csrf?: string;
    headers?: Record<string, string>;
  } = {},
): Promise<Reply> {
  const res = await fetch(base + path, {
    method: init.method ?? 'GET',
    headers: {
      ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(init.cookie ? { cookie: init.cookie } : {}),
      ...(init.csrf ? { 'x-csrf-token': init.csrf } : {}),
      ...init.headers,
    },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  const text = await res.text();
  let body: Record<string, unknown> | null;
  try {
    body = text ? (JSON.parse(text) as Record<string, unknown>) : null;
  } catch {
    body = null;
  }
  const set = res.headers.getSetCookie().find((c) => !/Max-Age=0/.test(c));
  return { status: res.status, headers: res.headers, body, cookie: set?.split(';')[0] };
}

async function login(
  base: string,
  username: string,
  password: string,
): Promise<{ cookie: string; csrf: string }> {
  const r = await call(base, '/auth/login', { method: 'POST', body: { username, password } });
  expect(r.status).toBe(200);
  return { cookie: r.cookie!, csrf: r.body!.csrfToken as string };
}

describe('auth routes on two gateways (A fastify, B express)', () => {
  let g: TwoGateways;

  beforeAll(async () => {
    // One trusted proxy hop: a test can speak for a client address of its own with X-Forwarded-For.
    g = await startTwoGateways((adapter, url) => start(adapter, url, { RATE_LIMIT_TRUST_PROXY_HOPS: '1' }));
  }, 60_000);

  afterAll(() => stopTwoGateways(g ?? {}));

  it('POST /auth/login: 200 { user, csrfToken } + HttpOnly cookie; 401 on bad credentials', async () => {
    const r = await call(g.a.base, '/auth/login', {
      method: 'POST',
      body: { username: 'alice', password: 'wonderland' },
    });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({
      user: { id: 'alice', name: 'alice' },
      csrfToken: expect.stringMatching(/^[\w-]{43}$/),
    });
    expect(r.headers.getSetCookie()[0]).toMatch(/HttpOnly; SameSite=Lax/);
    for (const body of [
      { username: 'alice', password: 'wrong' },
      { username: 'nobody', password: 'wonderland' },
      { username: 'alice' },
      {},
    ]) {
      const bad = await call(g.b.base, '/auth/login', { method: 'POST', body });
      expect(bad.status).toBe(401);
      expect(bad.cookie).toBeUndefined();
    }
    expect(
      (
        await call(g.b.base, '/auth/login', {
          method: 'POST',
          body: { username: 'carol', password: 'c:with:colons' },
        })
      ).status,
    ).toBe(200);
  });

  it('POST /auth/login takes JSON only: a form post (no CORS preflight: login CSRF) is 415 without a cookie', async () => {
    for (const base of [g.a.base, g.b.base]) {
      for (const [type, body] of [
        ['application/x-www-form-urlencoded', 'username=alice&password=wonderland'],
        ['text/plain', JSON.stringify({ username: 'alice', password: 'wonderland' })],
      ]) {
        const res = await fetch(base + '/auth/login', {
          method: 'POST',
          headers: { 'content-type': type },
          body,
        });
        expect({ base, type, status: res.status }).toEqual({ base, type, status: 415 });
        expect(res.headers.getSetCookie()).toEqual([]);
      }
    }
  });

  it('shares sessions: GET /auth/me on B with A’s cookie, 401 without one', async () => {
    const { cookie, csrf } = await login(g.a.base, 'alice', 'wonderland');
    expect(await call(g.b.base, '/auth/me', { cookie })).toMatchObject({
      status: 200,
      body: { user: { id: 'alice', name: 'alice' }, csrfToken: csrf },
    });
    expect(await call(g.b.base, '/auth/me')).toMatchObject({ status: 401, body: { statusCode: 401 } });
  });

  it('logout everywhere on A: the next request on B is 401 for every session of the user', async () => {
    const onA = await login(g.a.base, 'bob', 'builder');
    const onB = await login(g.b.base, 'bob', 'builder');
    const sessions = await call(g.b.base, '/auth/sessions', { cookie: onB.cookie });
    const list = sessions.body!.sessions as Array<{ ref: string; current: boolean }>;
    expect(list.length).toBeGreaterThanOrEqual(2);
    // The one marked current is the session of the cookie sent (refs are one-way, non-secret).
    const refOf = (cookie: string) => g.a.app.get(SessionService).refOf(cookie.split('=')[1]);
    expect(list.filter((s) => s.current).map((s) => s.ref)).toEqual([refOf(onB.cookie)]);
    expect(list.map((s) => s.ref)).toContain(refOf(onA.cookie));
    expect((await call(g.a.base, '/auth/logout-all', { method: 'POST', cookie: onA.cookie })).status).toBe(
      403,
    );
    const out = await call(g.a.base, '/auth/logout-all', {
      method: 'POST',
      cookie: onA.cookie,
      csrf: onA.csrf,
    });
    expect(out.status).toBe(204);
    expect(out.headers.getSetCookie()[0]).toMatch(/Max-Age=0/);
    expect((await call(g.b.base, '/auth/me', { cookie: onB.cookie })).status).toBe(401);
    expect((await call(g.b.base, '/auth/me', { cookie: onA.cookie })).status).toBe(401);
    expect((await call(g.a.base, '/auth/me', { cookie: onB.cookie })).status).toBe(401);
  });

  it('POST /auth/logout: 403 without X-CSRF-Token, 204 with it; then 401', async () => {
    const { cookie, csrf } = await login(g.b.base, 'alice', 'wonderland');
    expect((await call(g.a.base, '/auth/logout', { method: 'POST', cookie })).status).toBe(403);
    expect(
      (await call(g.a.base, '/auth/logout', { method: 'POST', cookie, csrf: 'A'.repeat(43) })).status,
    ).toBe(403);
    expect((await call(g.a.base, '/auth/logout', { method: 'POST', cookie, csrf })).status).toBe(204);
    expect((await call(g.b.base, '/auth/me', { cookie })).status).toBe(401);
  });

  it('CSRF on any unsafe route with a session cookie; anonymous requests unaffected', async () => {
    const { cookie, csrf } = await login(g.a.base, 'alice', 'wonderland');
    const card = { title: 'csrf check' };
    expect((await call(g.b.base, '/boards/3/cards', { method: 'POST', body: card, cookie })).status).toBe(
      403,
    );
    expect(
      (await call(g.b.base, '/boards/3/cards', { method: 'POST', body: card, cookie, csrf })).status,
    ).toBe(201);
    expect((await call(g.b.base, '/boards/3/cards', { method: 'POST', body: card })).status).toBe(201);
  });

  it('fixation: a planted cookie (live or not) is replaced at login; ids in the URL or body are ignored', async () => {
    const attacker = await login(g.a.base, 'carol', 'c:with:colons');
    const plantedId = attacker.cookie.split('=')[1];
    for (const planted of [attacker.cookie, `rwsid=${'x'.repeat(6)}.${'y'.repeat(43)}`]) {
      const r = await call(g.b.base, `/auth/login?rwsid=${plantedId}`, {
        method: 'POST',
        body: { username: 'alice', password: 'wonderland', rwsid: plantedId },
        cookie: planted,
      });
      expect(r.status).toBe(200);
      expect(r.cookie).toBeDefined();
      expect(r.cookie!.split('=')[1]).not.toBe(planted.split('=')[1]);
    }
    expect((await call(g.a.base, '/auth/me', { cookie: attacker.cookie })).status).toBe(401);
    expect((await call(g.a.base, `/auth/me?rwsid=${plantedId}`)).status).toBe(401);
  });

  it('GET /boards/:id keeps per-user cache entries keyed by the session user', async () => {
    const alice = await login(g.a.base, 'alice', 'wonderland');
    const bob = await login(g.a.base, 'bob', 'builder');
    const id = 40 + Math.floor(Math.random() * 9);
    const first = await call(g.a.base, `/boards/${id}`, { cookie: alice.cookie });
    expect(first.status).toBe(200);
    expect((await call(g.a.base, `/boards/${id}`, { cookie: alice.cookie })).headers.get('x-cache')).toBe(
      'HIT',
    );
    expect((await call(g.a.base, `/boards/${id}`, { cookie: bob.cookie })).headers.get('x-cache')).toBe(
      'MISS',
    );
    expect((await call(g.a.base, `/boards/${id}`)).headers.get('x-cache')).toBe('MISS');
  });

  it('keeps the demo bearer token working; with a session cookie too, the session user wins', async () => {
    const bearer = { authorization: 'Bearer demo.dave' };
    expect((await call(g.a.base, '/limited/me', { headers: bearer })).body).toEqual({ user: 'dave' });
    const { cookie } = await login(g.b.base, 'alice', 'wonderland');
    for (const gw of [g.a, g.b]) {
      expect((await call(gw.base, '/limited/me', { headers: bearer, cookie })).body).toEqual({
        user: 'alice',
      });
    }
  });

  it('limits failed logins per user name (429 after 10), successes do not count', async () => {
    for (let i = 0; i < 12; i++) await login(g.a.base, 'carol', 'c:with:colons');
    const statuses: number[] = [];
    for (let i = 0; i < 11; i++) {
      statuses.push(
        (
          await call(i % 2 ? g.a.base : g.b.base, '/auth/login', {
            method: 'POST',
            body: { username: 'carol', password: 'nope' },
          })
        ).status,
      );
    }
    expect(statuses.slice(0, 10)).toEqual(Array(10).fill(401));
    expect(statuses[10]).toBe(429);
  });

  it('limits failed logins per client address (429 after 30, any user name), on both instances', async () => {
    const from = (ip: string) => ({ 'x-forwarded-for': ip });
    const statuses: number[] = [];
    for (let i = 0; i < 31; i++) {
      statuses.push(
        (
          await call(i % 2 ? g.a.base : g.b.base, '/auth/login', {
            method: 'POST',
            body: { username: `guess${i}`, password: 'nope' },
            headers: from('203.0.113.7'),
          })
        ).status,
      );
    }
    expect(statuses.slice(0, 30)).toEqual(Array(30).fill(401));
    expect(statuses[30]).toBe(429);
    // The address is blocked even with the right password; another address is not.
    const right = { username: 'bob', password: 'builder' };
    expect(
      (await call(g.a.base, '/auth/login', { method: 'POST', body: right, headers: from('203.0.113.7') }))
        .status,
    ).toBe(429);
    expect(
      (await call(g.b.base, '/auth/login', { method: 'POST', body: right, headers: from('203.0.113.8') }))
        .status,
    ).toBe(200);
  });
});

describe.each(['fastify', 'express'] as const)('auth on %s with Redis down', (adapter) => {
  let redis: RedisServer;
  let gw: Gateway;

  beforeAll(async () => {
    redis = await RedisServer.start();
    gw = await start(adapter, redis.url());
  }, 30_000);

  afterAll(async () => {
    await gw?.app.close();
    await redis?.stop();
  });

  it('login and session reads answer 503 + Retry-After (never 401, never a cookie); anonymous routes keep working', async () => {
    const { cookie } = await login(gw.base, 'alice', 'wonderland');
    redis.pause();
    try {
      const attempt = await call(gw.base, '/auth/login', {
        method: 'POST',
        body: { username: 'bob', password: 'builder' },
      });
      expect(attempt.status).toBe(503);
      expect(Number(attempt.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(attempt.headers.getSetCookie()).toEqual([]);
      const me = await call(gw.base, '/auth/me', { cookie });
      expect(me.status).toBe(503);
      expect(Number(me.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect((await call(gw.base, '/health')).status).toBe(200);
    } finally {
      redis.resume();
    }
    await waitFor(
      'session readable again',
      10_000,
      async () => (await call(gw.base, '/auth/me', { cookie })).status === 200,
    );
    const keys = String(await redis.cli('--scan', '--pattern', 'redwing:session:*:u:*'))
      .trim()
      .split('\n');
    expect(keys).toHaveLength(1);
  });
});

describe('secrets never reach logs or /metrics', () => {
  it('0 session ids, cookies or CSRF tokens in the captured log lines and the /metrics output', async () => {
    const redis = await RedisServer.start();
    const logger = new CapturingLogger();
    const app = await createApp({
      adapter: 'express',
      env: gatewayEnv(redis.url(), { ...SESSION_ENV, LOG_LEVEL: 'verbose' }),
      logger,
    });
    try {
      await app.listen(0, '127.0.0.1');
      const base = `http://127.0.0.1:${(app.getHttpServer().address() as { port: number }).port}`;
      await waitForReady(base);
      const secrets: string[] = [];
      for (let i = 0; i < 3; i++) {
        const { cookie, csrf } = await login(base, 'alice', 'wonderland');
        const id = cookie.split('=')[1];
        secrets.push(cookie, id, id.split('.')[1], csrf, 'wonderland');
        await call(base, '/auth/me', { cookie });
        await call(base, '/auth/logout', { method: 'POST', cookie, csrf: 'bad' });
        await call(base, '/auth/sessions', { cookie });
      }
      await call(base, '/auth/login', { method: 'POST', body: { username: 'alice', password: 'not-it' } });
      const metrics = await (await fetch(`${base}/metrics`)).text();
      expect(metrics).toMatch(/redwing_session_created_total 3/);
      const haystack = `${metrics}\n${logger.lines.map((l) => l.message).join('\n')}`;
      expect(secrets.filter((s) => haystack.includes(s))).toEqual([]);
      expect(haystack.includes('not-it')).toBe(false);
    } finally {
      await app.close();
      await redis.stop();
    }
  });
});

describe('secrets never reach Sentry events', () => {
  it('an error under a session route reports no session id, cookie or CSRF token', async () => {
    const redis = await RedisServer.start();
    const receiver = await SentryReceiver.start();
    const gw = await start('fastify', redis.url(), { SENTRY_DSN: receiver.dsn });
    try {
      const { cookie, csrf } = await login(gw.base, 'alice', 'wonderland');
      const spy = jest.spyOn(SessionService.prototype, 'listForUser').mockImplementationOnce(() => {
        throw new RangeError('listing exploded');
      });
      const r = await call(gw.base, `/auth/sessions?probe=1`, { cookie, headers: { 'x-csrf-token': csrf } });
      expect(r.status).toBe(500);
      expect(spy).toHaveBeenCalled();
      const events = await receiver.waitForEvents(1);
      const text = JSON.stringify(events) + JSON.stringify(receiver.items);
      expect(text).toContain('listing exploded');
      const id = cookie.split('=')[1];
      expect([cookie, id, id.split('.')[1], csrf].filter((s) => text.includes(s))).toEqual([]);
    } finally {
      jest.restoreAllMocks();
      await gw.app.close();
      delete process.env.SENTRY_DSN;
      await receiver.close();
      await redis.stop();
    }
  });
});
