// Issue 13 items 1–3 through a scenario app on Fastify and on Express, against a real redis-server:
// per-user keys cannot be forged from a URL or a custom key (the three exploits of the issue, raw request
// lines included), credentialed requests are not served from or stored in a shared entry unless the route
// opts in (RELIABILITY "credentialed requests"), and a declared query allow-list keeps 1,000 random values
// of an ignored parameter to 1 upstream call and 1 entry (RELIABILITY "cache busting").
import * as net from 'node:net';
import {
  Controller,
  Get,
  Injectable,
  Module,
  Param,
  Req,
  type CanActivate,
  type ExecutionContext,
  type INestApplication,
} from '@nestjs/common';
import { APP_GUARD, APP_INTERCEPTOR } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { RedisClientManager, RedisClientModule } from '@redwing/redis';
import { CacheInterceptor, CacheModule, CacheService, Cacheable } from '@redwing/cache';
import { HOST, RedisServer, stopAll } from '../../../test/harness';
import { fastRedisOptions, request, waitFor, type HttpResult } from './helpers';

afterAll(() => stopAll());

/**
 * Stands in for authentication: `x-user: alice` → request.user = { id: 'alice' }; `x-user-json` takes the id as
 * a JSON string (ids from a JSON body or token may hold any UTF-16, lone surrogates included).
 */
@Injectable()
class HeaderAuthGuard implements CanActivate {
  canActivate(ctx: ExecutionContext): boolean {
    const req = ctx.switchToHttp().getRequest<{ headers: Record<string, string>; user?: unknown }>();
    if (req.headers['x-user']) req.user = { id: req.headers['x-user'] };
    if (req.headers['x-user-json']) req.user = { id: JSON.parse(req.headers['x-user-json']) as string };
    return true;
  }
}

type Req = {
  user?: { id: string };
  headers: Record<string, string | undefined>;
  query: Record<string, string>;
};

@Controller('k')
class KeysController {
  calls: Record<string, number> = {};

  private count(what: string): number {
    return (this.calls[what] = (this.calls[what] ?? 0) + 1);
  }

  @Get('r')
  @Cacheable()
  r(@Req() req: Req) {
    this.count('r');
    return { user: req.user?.id ?? null, secret: `private data of ${req.user?.id ?? 'nobody'}` };
  }

  @Get('search')
  @Cacheable({ key: (req: Req) => `search:${req.query.q}` })
  search(@Req() req: Req) {
    this.count('search');
    return { q: req.query.q, user: req.user?.id ?? null };
  }

  /** Reads the credentials itself (no request.user): the case RFC 9111 §3.5 is about. */
  @Get('token')
  @Cacheable()
  token(@Req() req: Req) {
    return {
      auth: req.headers.authorization ?? null,
      cookie: req.headers.cookie ?? null,
      n: this.count('token'),
    };
  }

  @Get('token-global')
  @Cacheable({ scope: 'global' })
  tokenGlobal(@Req() req: Req) {
    return { auth: req.headers.authorization ?? null, n: this.count('token-global') };
  }

  @Get('token-vary')
  @Cacheable({ vary: ['authorization'] })
  tokenVary(@Req() req: Req) {
    return { auth: req.headers.authorization ?? null, n: this.count('token-vary') };
  }

  @Get('board/:id')
  @Cacheable({ profile: 'busting', query: [] })
  board(@Param('id') id: string) {
    return { id, n: this.count(`board:${id}`) };
  }

  @Get('list')
  @Cacheable({ profile: 'busting', query: ['page', 'sort'] })
  list(@Req() req: Req) {
    return { page: req.query.page ?? null, sort: req.query.sort ?? null, n: this.count('list') };
  }
}

/** A provider method whose key comes straight from its argument (e.g. request input). */
@Injectable()
class Finder {
  calls = 0;

  @Cacheable({ key: (k: string) => k })
  async find(k: string): Promise<{ found: string }> {
    this.calls++;
    return { found: k };
  }
}

/** One request written byte for byte (the request line is not normalised by any client). */
function rawGet(base: string, target: string, headers: Record<string, string> = {}): Promise<HttpResult> {
  const { port } = new URL(base);
  const head = [`GET ${target} HTTP/1.1`, `Host: ${HOST}:${port}`, 'Connection: close'];
  for (const [name, value] of Object.entries(headers)) head.push(`${name}: ${value}`);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), HOST);
    const chunks: Buffer[] = [];
    socket.setTimeout(10_000, () => socket.destroy(new Error(`${target}: no response within 10 s`)));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const [headText, ...rest] = text.split('\r\n\r\n');
      const lines = headText.split('\r\n');
      const status = Number(lines[0].split(' ')[1]);
      const hdrs: Record<string, string> = {};
      for (const line of lines.slice(1)) {
        const i = line.indexOf(':');
        hdrs[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      let body = rest.join('\r\n\r\n');
      if (hdrs['transfer-encoding'] === 'chunked') body = unchunk(body);
      let parsed: unknown;
      try {
        parsed = JSON.parse(body);
      } catch {
        parsed = undefined;
      }
      resolve({ status, headers: hdrs, text: body, body: parsed });
    });
    socket.write(`${head.join('\r\n')}\r\n\r\n`);
  });
}

function unchunk(text: string): string {
  let out = '';
  let rest = text;
  for (;;) {
    const eol = rest.indexOf('\r\n');
    const size = parseInt(rest.slice(0, eol), 16);
    if (!size) return out;
    out += rest.slice(eol + 2, eol + 2 + size);
    rest = rest.slice(eol + 2 + size + 2);
  }
}

describe.each(['fastify', 'express'] as const)('route keys on %s', (adapter) => {
  let server: RedisServer;
  let app: INestApplication;
  let base: string;
  let controller: KeysController;
  let manager: RedisClientManager;

  beforeAll(async () => {
    server = await RedisServer.start();
    @Module({
      imports: [
        RedisClientModule.forRoot({ ...fastRedisOptions, url: server.url() }),
        CacheModule.forRoot({ ttl: 60_000, profiles: { busting: {} } }),
      ],
      controllers: [KeysController],
      providers: [
        Finder,
        { provide: APP_GUARD, useClass: HeaderAuthGuard },
        { provide: APP_INTERCEPTOR, useClass: CacheInterceptor },
      ],
    })
    class KeysModule {}
    const module = await Test.createTestingModule({ imports: [KeysModule] }).compile();
    app = module.createNestApplication(adapter === 'fastify' ? new FastifyAdapter() : new ExpressAdapter(), {
      logger: false,
    });
    await app.listen(0, HOST);
    base = `http://${HOST}:${(app.getHttpServer().address() as { port: number }).port}`;
    controller = app.get(KeysController);
    manager = app.get(RedisClientManager);
    const cache = app.get(CacheService);
    await waitFor(
      'cache sync',
      10_000,
      async () => (await cache.stats({ redis: false })).invalidation.synced,
    );
  });

  afterAll(async () => {
    await app?.close();
    await server?.stop();
  });

  const get = (path: string, headers: Record<string, string> = {}) => request(base + path, { headers });
  const xCache = (r: HttpResult) => r.headers['x-cache'];

  describe('per-user keys cannot be forged', () => {
    it("an anonymous raw `GET /k/r#u:alice` is not served alice's entry", async () => {
      const alice = await get('/k/r', { 'x-user': 'alice' });
      expect(alice.body.user).toBe('alice');
      expect(xCache(await get('/k/r', { 'x-user': 'alice' }))).toBe('HIT');
      const forged = await rawGet(base, '/k/r#u:alice');
      expect(forged.status).toBe(200);
      expect(forged.body).toEqual({ user: null, secret: 'private data of nobody' });
      expect(forged.headers['x-cache']).not.toBe('HIT');
    });

    it('an anonymous raw `GET /k/r#u:bob` plants nothing bob is served', async () => {
      const planted = await rawGet(base, '/k/r#u:bob');
      expect(planted.body.user).toBeNull();
      const bob = await get('/k/r', { 'x-user': 'bob' });
      expect(bob.body).toEqual({ user: 'bob', secret: 'private data of bob' });
      expect(xCache(bob)).toBe('MISS');
    });

    it("`?q=boards%23u:alice` with a custom key function is not served alice's `?q=boards` entry", async () => {
      const alice = await get('/k/search?q=boards', { 'x-user': 'alice' });
      expect(alice.body).toEqual({ q: 'boards', user: 'alice' });
      const forged = await get('/k/search?q=boards%23u:alice');
      expect(forged.body).toEqual({ q: 'boards#u:alice', user: null });
      expect(xCache(forged)).toBe('MISS');
      expect(xCache(await get('/k/search?q=boards', { 'x-user': 'alice' }))).toBe('HIT');
    });
  });

  it('a user id with a lone surrogate is not served the entry of its U+FFFD twin (Redis keys are UTF-8)', async () => {
    // As UTF-8 both ids are the same bytes: "erin" + EF BF BD.
    const twin = await get('/k/r', { 'x-user-json': '"erin\\ufffd"' });
    expect(twin.body.user).toBe('erin\ufffd');
    expect(xCache(twin)).toBe('MISS');
    const other = await get('/k/r', { 'x-user-json': '"erin\\ud800"' });
    expect(other.body).toEqual({ user: 'erin\ud800', secret: 'private data of erin\ud800' });
    expect(xCache(other)).toBe('MISS');
    expect(xCache(await get('/k/r', { 'x-user-json': '"erin\\ud800"' }))).toBe('HIT');
  });

  it('a provider method key in the route family (`~http:`) is never read or written', async () => {
    await get('/k/r', { 'x-user': 'dave' });
    const [routeKey] = await scanKeys('redwing:cache:default:~http:*u4:dave');
    expect(routeKey).toBeDefined();
    const finder = app.get(Finder);
    const key = routeKey.slice('redwing:cache:default:'.length);
    expect(await finder.find(key)).toEqual({ found: key });
    expect(await finder.find(key)).toEqual({ found: key });
    expect(finder.calls).toBe(2);
    expect(xCache(await get('/k/r', { 'x-user': 'dave' }))).toBe('HIT');
  });

  describe('credentialed requests (RFC 9111 §3.5)', () => {
    it('Authorization or Cookie without request.user: never stored in or served from a shared entry', async () => {
      const before = controller.calls.token ?? 0;
      const a = await get('/k/token', { authorization: 'Bearer token-of-a' });
      const b = await get('/k/token', { authorization: 'Bearer token-of-b' });
      const c1 = await get('/k/token', { cookie: 'sid=session-of-c' });
      const c2 = await get('/k/token', { cookie: 'sid=session-of-d' });
      expect(a.body.auth).toBe('Bearer token-of-a');
      expect(b.body.auth).toBe('Bearer token-of-b');
      expect(c1.body.cookie).toBe('sid=session-of-c');
      expect(c2.body.cookie).toBe('sid=session-of-d');
      expect([a, b, c1, c2].map(xCache)).toEqual([undefined, undefined, undefined, undefined]);
      expect((controller.calls.token ?? 0) - before).toBe(4);
      // A request without credentials after them is not served one of theirs either (nothing was stored).
      const anon = await get('/k/token');
      expect(anon.body).toMatchObject({ auth: null, cookie: null });
      expect(xCache(anon)).toBe('MISS');
      expect(xCache(await get('/k/token'))).toBe('HIT');
    });

    it('a request with request.user and a session cookie stays cached per user', async () => {
      const first = await get('/k/r', { 'x-user': 'carol', cookie: 'sid=carol-session' });
      const second = await get('/k/r', { 'x-user': 'carol', cookie: 'sid=another' });
      expect([xCache(first), xCache(second)]).toEqual(['MISS', 'HIT']);
      expect(second.body.user).toBe('carol');
    });

    it("opting in: scope 'global' shares one entry; vary: ['authorization'] keeps one entry per credential", async () => {
      const g1 = await get('/k/token-global', { authorization: 'Bearer a' });
      const g2 = await get('/k/token-global', { authorization: 'Bearer b' });
      expect([xCache(g1), xCache(g2)]).toEqual(['MISS', 'HIT']);
      expect(g2.text).toBe(g1.text);

      const v1 = await get('/k/token-vary', { authorization: 'Bearer a' });
      const v2 = await get('/k/token-vary', { authorization: 'Bearer a' });
      const v3 = await get('/k/token-vary', { authorization: 'Bearer b' });
      expect([xCache(v1), xCache(v2), xCache(v3)]).toEqual(['MISS', 'HIT', 'MISS']);
      expect(v3.body.auth).toBe('Bearer b');
      // A cookie is a credential the route did not list: bypass.
      const withCookie = await get('/k/token-vary', { authorization: 'Bearer a', cookie: 'sid=x' });
      expect(xCache(withCookie)).toBeUndefined();
      // Neither the header values nor the cookie are in Redis keys.
      const keys = await scanKeys('redwing:cache:default:*');
      expect(keys.some((k) => k.includes('Bearer') || k.includes('sid='))).toBe(false);
    });
  });

  describe('query allow-list', () => {
    it('1,000 random values of an ignored parameter: 1 upstream call, 1 entry', async () => {
      const id = `${adapter}-1`;
      const responses: HttpResult[] = [];
      for (let batch = 0; batch < 100; batch++) {
        responses.push(
          ...(await Promise.all(
            Array.from({ length: 10 }, () => get(`/k/board/${id}?cb=${Math.random().toString(36).slice(2)}`)),
          )),
        );
      }
      expect(responses).toHaveLength(1_000);
      expect(responses.every((r) => r.status === 200 && r.body.id === id)).toBe(true);
      expect(controller.calls[`board:${id}`]).toBe(1);
      expect(await scanKeys(`redwing:cache:busting:*board/${id}*`)).toHaveLength(1);
    }, 60_000);

    it('declared parameters are keyed in sorted order; everything else is ignored', async () => {
      const a = await get('/k/list?sort=name&page=2&cb=1');
      const b = await get('/k/list?page=2&utm_source=x&sort=name');
      const c = await get('/k/list?page=3&sort=name');
      expect([xCache(a), xCache(b), xCache(c)]).toEqual(['MISS', 'HIT', 'MISS']);
      expect(b.body).toEqual(a.body);
      expect(c.body.page).toBe('3');
      expect(controller.calls.list).toBe(2);
    });
  });

  async function scanKeys(pattern: string): Promise<string[]> {
    const conn = manager.get().command;
    const found: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await conn.scan(cursor, 'MATCH', pattern, 'COUNT', 1_000);
      cursor = next;
      found.push(...keys);
    } while (cursor !== '0');
    return found;
  }
});
