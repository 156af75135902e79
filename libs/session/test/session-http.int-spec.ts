// The session middleware, guard and decorators through a real HTTP app on Fastify and on Express, against a
// real redis-server: login (fixation protection), CSRF, idle and absolute limits, the Redis TTL cap, an outage
// during login, and no id, cookie or CSRF token in logs, metrics or span attributes.
import {
  Body,
  Controller,
  type DynamicModule,
  Get,
  HttpCode,
  Injectable,
  Module,
  type MiddlewareConsumer,
  type NestMiddleware,
  type NestModule,
  Post,
  Req,
  Res,
  type INestApplication,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { MetricsModule } from '@redwing/metrics';
import { RedisClientManager, RedisClientModule, setSpanRunner } from '@redwing/redis';
import {
  Authenticated,
  CurrentUser,
  Session,
  SessionModule,
  SessionService,
  type SessionModuleOptions,
  type SessionRecord,
  type SessionUser,
} from '@redwing/session';
import { MemorySpans } from '../../metrics/test/memory-spans';
import { CapturingLogger, RedisServer, sleep, stopAll, waitFor } from '../../../test/harness';
import { KEY_1, metricsStub, RecordingMetrics, redisOptions } from './helpers';

afterAll(() => stopAll());

@Controller()
class DemoController {
  constructor(private readonly sessions: SessionService) {}

  @Post('login')
  @HttpCode(200)
  async login(@Req() req: object, @Res({ passthrough: true }) res: object, @Body() body: { user: string }) {
    const { session, csrfToken } = await this.sessions.login(req as never, res as never, {
      userId: body.user,
    });
    return { user: session.userId, csrfToken };
  }

  @Get('me')
  @Authenticated()
  me(@CurrentUser() user: SessionUser, @Session() session: SessionRecord) {
    return { user: user.id, ref: session.ref, data: session.data };
  }

  @Post('note')
  @Authenticated()
  async note(@Session() session: SessionRecord, @Body() body: { field: string; value: string }) {
    await this.sessions.update(session, { [body.field]: body.value });
    return { ok: true };
  }

  @Post('logout')
  @HttpCode(204)
  async logout(@Req() req: object, @Res({ passthrough: true }) res: object) {
    await this.sessions.logout(req as never, res as never);
  }

  @Get('public')
  publicGet(@Req() req: { user?: unknown; raw?: { user?: unknown } }) {
    return { ok: true, user: req.user ?? req.raw?.user ?? null };
  }

  @Post('public')
  @HttpCode(200)
  publicPost() {
    return { ok: true };
  }
}

/** An application's own middleware: shows which user it saw, in a response header. */
@Injectable()
class SeenByMiddleware implements NestMiddleware {
  use(
    req: { user?: { id: string } },
    res: { setHeader(name: string, value: string): void },
    next: () => void,
  ) {
    res.setHeader('x-user-seen-by-middleware', req.user?.id ?? '-');
    next();
  }
}

interface App {
  app: INestApplication;
  base: string;
  logger: CapturingLogger;
  metrics: RecordingMetrics;
}

/** The demo app on `adapter`; `metricsModule` (a real MetricsModule) replaces the recording metrics stub. */
async function startApp(
  adapter: 'fastify' | 'express',
  url: string,
  options: SessionModuleOptions = {},
  metricsModule?: DynamicModule,
): Promise<App> {
  const metrics = new RecordingMetrics();
  @Module({
    imports: [
      metricsModule ?? metricsStub(metrics),
      RedisClientModule.forRoot(redisOptions({ url })),
      SessionModule.forRoot({ keys: [KEY_1], useEnv: false, ...options }),
    ],
    controllers: [DemoController],
    providers: [SeenByMiddleware],
  })
  class AppModule implements NestModule {
    configure(consumer: MiddlewareConsumer): void {
      consumer.apply(SeenByMiddleware).forRoutes('public');
    }
  }
  const logger = new CapturingLogger();
  const app = await NestFactory.create(
    AppModule,
    adapter === 'fastify' ? new FastifyAdapter() : new ExpressAdapter(),
    { logger },
  );
  await app.listen(0, '127.0.0.1');
  await app.get(RedisClientManager).get().waitUntilReady(10_000);
  const { port } = app.getHttpServer().address() as { port: number };
  return { app, base: `http://127.0.0.1:${port}`, logger, metrics };
}

interface Reply {
  status: number;
  body: Record<string, unknown> | null;
  headers: Headers;
  cookie?: string;
}

/** One HTTP call; `cookie` is the `name=value` pair to send; `cookie` in the reply is the pair set, if any. */
async function call(
  base: string,
  path: string,
  init: { method?: string; cookie?: string; csrf?: string; body?: unknown } = {},
): Promise<Reply> {
  const headers: Record<string, string> = {};
  if (init.cookie) headers.cookie = init.cookie;
  if (init.csrf) headers['x-csrf-token'] = init.csrf;
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(base + path, {
    method: init.method ?? 'GET',
    headers,
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  const text = await res.text();
  const set = res.headers.getSetCookie().find((c) => !/Max-Age=0/.test(c));
  return {
    status: res.status,
    body: text ? (JSON.parse(text) as Record<string, unknown>) : null,
    headers: res.headers,
    cookie: set?.split(';')[0],
  };
}

async function login(base: string, user: string, cookie?: string): Promise<{ cookie: string; csrf: string }> {
  const r = await call(base, '/login', { method: 'POST', body: { user }, cookie });
  expect(r.status).toBe(200);
  return { cookie: r.cookie!, csrf: r.body!.csrfToken as string };
}

/** A secret and its 12-character pieces at every 6th offset: a truncated copy of it leaks too. */
function pieces(secret: string): string[] {
  const out = [secret];
  for (let i = 0; i + 12 <= secret.length; i += 6) out.push(secret.slice(i, i + 12));
  return out;
}

describe.each(['fastify', 'express'] as const)('session middleware on %s', (adapter) => {
  let redis: RedisServer;
  let h: App;
  const spans: Array<Record<string, unknown>> = [];

  beforeAll(async () => {
    setSpanRunner((name, attributes, fn) => {
      const span: Record<string, unknown> = { name, ...attributes };
      spans.push(span);
      return fn({ setAttribute: (k, v) => (span[k] = v) });
    });
    redis = await RedisServer.start();
    h = await startApp(adapter, redis.url(), { csrf: { exempt: ['/login'] } });
  }, 30_000);

  afterAll(async () => {
    setSpanRunner(null);
    await h?.app.close();
    await redis?.stop();
  });

  it('logs in with a cookie-only session: HttpOnly, SameSite=Lax; no Secure only on plain-HTTP loopback (warned)', async () => {
    const r = await call(h.base, '/login', { method: 'POST', body: { user: 'alice' } });
    const setCookie = r.headers.getSetCookie()[0];
    expect(setCookie).toMatch(
      /^rwsid=[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{43}; Path=\/; Max-Age=43200; HttpOnly; SameSite=Lax$/,
    );
    expect(h.logger.lines.some((l) => l.level === 'warn' && /without Secure/.test(l.message))).toBe(true);
    const me = await call(h.base, '/me', { cookie: r.cookie });
    expect(me).toMatchObject({ status: 200, body: { user: 'alice' } });
    expect((await call(h.base, '/public', { cookie: r.cookie })).body).toEqual({
      ok: true,
      user: { id: 'alice' },
    });
    expect(await call(h.base, '/me')).toMatchObject({
      status: 401,
      body: { statusCode: 401, error: 'Unauthorized' },
    });
  });

  it('sends Secure with the __Host- prefix to any request that is not plain-HTTP loopback', async () => {
    const r = await fetch(`${h.base}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forwarded-proto': 'https' },
      body: JSON.stringify({ user: 'alice' }),
    });
    const setCookie = r.headers.getSetCookie()[0];
    expect(setCookie).toMatch(/^__Host-rwsid=.+; Path=\/; .*HttpOnly; SameSite=Lax; Secure$/);
    const pair = setCookie.split(';')[0];
    const me = await fetch(`${h.base}/me`, { headers: { cookie: pair, 'x-forwarded-proto': 'https' } });
    expect(me.status).toBe(200);
    // A plain-HTTP loopback request reads only the plain cookie name.
    expect((await call(h.base, '/me', { cookie: pair })).status).toBe(401);
    // A public host name on the same socket (no proxy header at all) is not loopback either: Secure.
    // (node:http, since fetch does not let a caller set Host.)
    const named = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = httpRequest(`${h.base}/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', host: 'app.example.com' },
      });
      req.on('response', (res) => resolve(res.resume())).on('error', reject);
      req.end(JSON.stringify({ user: 'alice' }));
    });
    expect(named.statusCode).toBe(200);
    expect(named.headers['set-cookie']?.[0]).toMatch(
      /^__Host-rwsid=.+; Path=\/; .*HttpOnly; SameSite=Lax; Secure$/,
    );
  });

  it('fixation: the id after login differs in 100 % of cases; ids from the URL or body are ignored', async () => {
    const service = h.app.get(SessionService);
    let differs = 0;
    const N = 20;
    for (let i = 0; i < N; i++) {
      const planted =
        i % 2
          ? (await service.create({ data: { attacker: true } })).id
          : service.refOf(`${i}`).padEnd(50, 'A');
      const plantedCookie = `rwsid=${planted}`;
      const r = await call(h.base, `/login?sid=${planted}&rwsid=${planted}`, {
        method: 'POST',
        body: { user: 'victim', sid: planted, rwsid: planted },
        cookie: plantedCookie,
      });
      expect(r.status).toBe(200);
      const issued = r.cookie!.split('=')[1];
      if (issued !== planted) differs++;
      // A planted live session was destroyed, not upgraded.
      expect(await service.get(planted)).toBeNull();
    }
    expect(differs).toBe(N);
    // An id in the URL or body never authenticates.
    const { cookie } = await login(h.base, 'zoe');
    const id = cookie.split('=')[1];
    expect((await call(h.base, `/me?rwsid=${id}&sid=${id}`)).status).toBe(401);
    expect((await call(h.base, '/public', { method: 'POST', body: { rwsid: id } })).status).toBe(200);
  });

  it("the session is resolved before the app's own middleware: it sees request.user; without a cookie, no user", async () => {
    const { cookie } = await login(h.base, 'mallory');
    const withCookie = await call(h.base, '/public', { cookie });
    expect(withCookie.headers.get('x-user-seen-by-middleware')).toBe('mallory');
    expect(withCookie.body).toEqual({ ok: true, user: { id: 'mallory' } });
    const anonymous = await call(h.base, '/public');
    expect(anonymous.headers.get('x-user-seen-by-middleware')).toBe('-');
    expect(anonymous.body).toEqual({ ok: true, user: null });
    // The anonymous request still carries the session state the guard and decorators read: 401, not a 500.
    expect((await call(h.base, '/me')).status).toBe(401);
  });

  it('CSRF: unsafe requests with a session cookie need the token; anonymous ones and safe methods do not', async () => {
    const { cookie, csrf } = await login(h.base, 'bob');
    const note = { field: 'theme', value: 'dark' };
    expect(await call(h.base, '/note', { method: 'POST', cookie, body: note })).toMatchObject({
      status: 403,
      body: { statusCode: 403, error: 'Forbidden' },
    });
    expect(
      (await call(h.base, '/note', { method: 'POST', cookie, body: note, csrf: 'x'.repeat(43) })).status,
    ).toBe(403);
    const other = await login(h.base, 'bob');
    expect(
      (await call(h.base, '/note', { method: 'POST', cookie, body: note, csrf: other.csrf })).status,
    ).toBe(403);
    expect((await call(h.base, '/note', { method: 'POST', cookie, body: note, csrf })).status).toBe(201);
    expect((await call(h.base, '/me', { cookie })).body!.data).toEqual({ theme: 'dark' });
    expect((await call(h.base, '/public', { method: 'POST' })).status).toBe(200);
    // A cookie naming no live session is anonymous: no token needed, and the cookie is cleared.
    const stale = await fetch(`${h.base}/public`, {
      method: 'POST',
      headers: { cookie: `rwsid=${'A'.repeat(6)}.${'B'.repeat(43)}` },
    });
    expect(stale.status).toBe(200);
    expect(stale.headers.getSetCookie()[0]).toMatch(/^rwsid=; .*Max-Age=0/);
    expect((await call(h.base, '/logout', { method: 'POST', cookie })).status).toBe(403);
    expect((await call(h.base, '/logout', { method: 'POST', cookie, csrf })).status).toBe(204);
    expect((await call(h.base, '/me', { cookie })).status).toBe(401);
  });

  it('50 parallel requests each setting a different field: 50/50 fields present', async () => {
    const { cookie, csrf } = await login(h.base, 'parallel');
    const replies = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        call(h.base, '/note', { method: 'POST', cookie, csrf, body: { field: `f${i}`, value: `v${i}` } }),
      ),
    );
    expect(replies.filter((r) => r.status === 201)).toHaveLength(50);
    const data = (await call(h.base, '/me', { cookie })).body!.data as Record<string, string>;
    expect(Array.from({ length: 50 }, (_, i) => data[`f${i}`] === `v${i}`).filter(Boolean)).toHaveLength(50);
  });

  it('outage during login: 503 with Retry-After, no session created (in memory or Redis); no logout; anonymous routes work', async () => {
    const { cookie } = await login(h.base, 'survivor');
    const keysBefore = Number(await redis.command('DBSIZE'));
    redis.pause();
    try {
      const attempts = await Promise.all(
        [1, 2, 3].map(() => call(h.base, '/login', { method: 'POST', body: { user: 'eve' } })),
      );
      for (const r of attempts) {
        expect(r.status).toBe(503);
        expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
        expect(r.headers.getSetCookie()).toEqual([]);
        expect(r.body).toMatchObject({ statusCode: 503, retryAfter: 5 });
      }
      const me = await call(h.base, '/me', { cookie });
      expect(me.status).toBe(503);
      expect(me.headers.get('retry-after')).toBe('5');
      expect((await call(h.base, '/public')).status).toBe(200);
      expect((await call(h.base, '/public', { cookie })).status).toBe(200);
    } finally {
      redis.resume();
    }
    await waitFor('Redis back', 10_000, async () => (await call(h.base, '/me', { cookie })).status === 200);
    // Creates that timed out were applied by Redis after the pause; the service deletes them (their ids were
    // never given to anyone), so no session of the failed logins remains.
    await waitFor(
      'timed-out creates compensated',
      5_000,
      async () => Number(await redis.command('DBSIZE')) === keysBefore,
      {
        details: () => `DBSIZE differs from ${keysBefore}`,
      },
    );
    expect(await h.app.get(SessionService).listForUser('eve')).toEqual([]);
    expect(h.metrics.get('redwing_session_unavailable_total{operation=create}')).toBeGreaterThanOrEqual(1);
  });

  it('scans logs, metrics and span attributes for session ids, cookies and CSRF tokens: 0 hits', async () => {
    const secrets: string[] = [];
    for (let i = 0; i < 3; i++) {
      const { cookie, csrf } = await login(h.base, `scan${i}`);
      secrets.push(cookie, ...pieces(cookie.split('=')[1]), ...pieces(csrf));
      await call(h.base, '/me', { cookie });
      await call(h.base, '/note', {
        method: 'POST',
        cookie,
        csrf: 'wrong',
        body: { field: 'a', value: 'b' },
      });
    }
    expect(spans.filter((s) => s.name === 'session.load').length).toBeGreaterThan(0);
    const haystack = [
      ...h.logger.lines.map((l) => l.message),
      ...[...h.metrics.values.keys()],
      ...spans.map((s) => JSON.stringify(s)),
    ].join('\n');
    expect(secrets.filter((s) => haystack.includes(s))).toEqual([]);
  });
});

describe.each(['fastify', 'express'] as const)('session lifetimes and outage on %s', (adapter) => {
  let redis: RedisServer;
  let h: App;

  beforeAll(async () => {
    redis = await RedisServer.start();
    // touchInterval 0: every read extends the idle expiry, so each read in the last idle period must cap it.
    h = await startApp(adapter, redis.url(), {
      idleTimeout: 1_000,
      absoluteTimeout: 2_500,
      touchInterval: 0,
    });
  }, 30_000);

  afterAll(async () => {
    await h?.app.close();
    await redis?.stop();
  });

  it('idle limit: 200 while used, 401 just past the idle timeout', async () => {
    const { cookie } = await login(h.base, 'idle');
    expect((await call(h.base, '/me', { cookie })).status).toBe(200);
    await sleep(1_100);
    expect((await call(h.base, '/me', { cookie })).status).toBe(401);
  });

  it('absolute limit: 401 just past it however active; the Redis TTL never exceeds the remaining lifetime', async () => {
    const service = h.app.get(SessionService);
    const { cookie } = await login(h.base, 'absolute');
    const id = cookie.split('=')[1];
    const key = `redwing:session:{${id.slice(0, 6)}}:s:${service.refOf(id)}`;
    const first = await call(h.base, '/me', { cookie });
    expect(first.status).toBe(200);
    const deadline = Date.now() + 2_500;
    let checks = 0;
    while (Date.now() < deadline - 300) {
      const r = await call(h.base, '/me', { cookie });
      expect(r.status).toBe(200);
      // Read before PTTL is sent: Redis answers later, so its TTL can only be smaller (a slow reply cannot fail it).
      const remaining = deadline - Date.now();
      const pttl = Number(await redis.command('PTTL', key));
      expect(pttl).toBeGreaterThan(0);
      expect(pttl).toBeLessThanOrEqual(remaining + 5);
      checks++;
      await sleep(150);
    }
    expect(checks).toBeGreaterThan(3);
    await waitFor('absolute deadline', 3_000, () => Date.now() > deadline + 50);
    expect((await call(h.base, '/me', { cookie })).status).toBe(401);
    expect(Number(await redis.command('EXISTS', key))).toBe(0);
  });

  it('Redis killed (connection refused, not a hang): login and reads 503 + Retry-After, anonymous routes 200', async () => {
    const { cookie } = await login(h.base, 'killed');
    await redis.kill('SIGKILL');
    try {
      for (let i = 0; i < 3; i++) {
        const attempt = await call(h.base, '/login', { method: 'POST', body: { user: 'eve' } });
        expect(attempt).toMatchObject({ status: 503, body: { statusCode: 503 } });
        expect(attempt.headers.get('retry-after')).toBe('5');
        expect(attempt.headers.getSetCookie()).toEqual([]);
        const me = await call(h.base, '/me', { cookie });
        expect(me.status).toBe(503);
        expect(me.headers.get('retry-after')).toBe('5');
        expect((await call(h.base, '/public', { cookie })).status).toBe(200);
      }
    } finally {
      await redis.restart();
    }
    await h.app.get(RedisClientManager).get().waitUntilReady(10_000);
    expect(await h.app.get(SessionService).listForUser('eve')).toEqual([]);
  });
});

describe.each(['fastify', 'express'] as const)(
  'session span and /metrics with MetricsModule on %s',
  (adapter) => {
    const SERVER = 2;
    const store = new MemorySpans();
    let redis: RedisServer;
    let h: App;

    beforeAll(async () => {
      redis = await RedisServer.start();
      h = await startApp(
        adapter,
        redis.url(),
        { csrf: { exempt: ['/login'] } },
        MetricsModule.forRoot({
          serviceName: 'session-test',
          useEnv: false,
          series: false,
          tracing: { enabled: true, spanProcessors: [store.processor] },
        }),
      );
    }, 30_000);

    afterAll(async () => {
      await h?.app.close();
      await redis?.stop();
    });

    it('session.load is a child of the request span; no id, cookie or CSRF token in any span, /metrics or log', async () => {
      const secrets: string[] = [];
      for (let i = 0; i < 2; i++) {
        const { cookie, csrf } = await login(h.base, `traced${i}`);
        const id = cookie.split('=')[1];
        secrets.push(cookie, ...pieces(id), ...pieces(csrf));
        expect((await call(h.base, '/me', { cookie })).status).toBe(200);
        await call(h.base, '/note', {
          method: 'POST',
          cookie,
          csrf: 'wrong',
          body: { field: 'a', value: 'b' },
        });
        await call(h.base, '/logout', { method: 'POST', cookie, csrf });
        expect((await call(h.base, '/me', { cookie })).status).toBe(401);
      }
      const found = await store.waitForSpan(
        (s) => s.name === 'session.load' && s.attributes['session.outcome'] === 'found',
      );
      const request = store.trace(found.traceId).find((s) => s.kind === SERVER);
      expect(request).toMatchObject({ name: 'GET /me' });
      expect(found.parentSpanId).toBe(request!.spanId);
      expect(found.attributes['session.ref']).toMatch(/^[\w-]{22}$/);
      // The session's Redis read is traced under it.
      expect(store.children(found).length).toBeGreaterThan(0);
      await store.waitForSpan((s) => s.name === 'session.load' && s.attributes['session.outcome'] === 'none');
      const metrics = await (await fetch(`${h.base}/metrics`)).text();
      expect(metrics).toMatch(/^redwing_session_created_total(\{[^}]*\})? 2$/m);
      expect(metrics).toMatch(/^redwing_session_destroyed_total\{[^}]*reason="logout"[^}]*\} 2$/m);
      expect(metrics).toMatch(/^redwing_session_rejected_total\{[^}]*reason="unknown"[^}]*\} 2$/m);
      for (const reason of ['tamper', 'expired', 'unknown_key']) {
        expect(metrics).toMatch(new RegExp(`^redwing_session_rejected_total\\{[^}]*reason="${reason}"`, 'm'));
      }
      const haystack = [JSON.stringify(store.all()), metrics, ...h.logger.lines.map((l) => l.message)].join(
        '\n',
      );
      expect(secrets.filter((s) => haystack.includes(s))).toEqual([]);
    });
  },
);
