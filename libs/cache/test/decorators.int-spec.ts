// @Cacheable / @CacheEvict / @CachePut through a small scenario app (Test.createTestingModule + a real
// HTTP listener) on Express and on Fastify, against a real redis-server: service methods (wrapped at
// start-up) and controller routes (the global CacheInterceptor), including RELIABILITY.md "per-user leak".
import {
  Body,
  Controller,
  Get,
  HttpCode,
  HttpException,
  Injectable,
  Module,
  Param,
  Post,
  Put,
  Req,
  Res,
  type CanActivate,
  type ExecutionContext,
  type INestApplication,
} from '@nestjs/common';
import { APP_GUARD, APP_INTERCEPTOR } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { RedisClientModule } from '@redwing/redis';
import { CacheEvict, CacheInterceptor, CacheModule, CachePut, CacheService, Cacheable } from '@redwing/cache';
import { RedisServer, stopAll } from '../../../test/harness';
import { fastRedisOptions, request, sleep, waitFor, type HttpResult } from './helpers';

afterAll(() => stopAll());

/** Stands in for authentication: `x-user: alice` → request.user = { id: 'alice' }. */
@Injectable()
class HeaderAuthGuard implements CanActivate {
  canActivate(ctx: ExecutionContext): boolean {
    const req = ctx.switchToHttp().getRequest<{ headers: Record<string, string>; user?: unknown }>();
    const user = req.headers['x-user'];
    if (user === 'nameless') req.user = { name: 'has no id' };
    else if (user) req.user = { id: user };
    return true;
  }
}

@Injectable()
class UsersRepository {
  calls: Record<string, number> = {};
  private names = new Map<string, string>();

  private count(what: string) {
    this.calls[what] = (this.calls[what] ?? 0) + 1;
  }

  @Cacheable({ key: (id: string) => `user:${id}`, tags: (id: string) => [`user:${id}`], ttl: 60_000 })
  async find(id: string): Promise<{ id: string; name: string; since: Date }> {
    this.count('find');
    return { id, name: this.names.get(id) ?? `User ${id}`, since: new Date(0) };
  }

  @Cacheable()
  async total(a: number, b: { x: number; y: number }): Promise<number> {
    this.count('total');
    return a + b.x + b.y;
  }

  @Cacheable({ condition: (id: string) => id !== 'skip', unless: (r: unknown) => r === null })
  async maybe(id: string): Promise<string | null> {
    this.count('maybe');
    return id === 'none' ? null : id;
  }

  @CacheEvict({ tags: (id: string) => [`user:${id}`] })
  async rename(id: string, name: string): Promise<void> {
    this.names.set(id, name);
  }

  @CachePut({ key: (id: string) => `user:${id}`, tags: (id: string) => [`user:${id}`] })
  async reload(id: string): Promise<{ id: string; name: string; since: Date }> {
    this.count('reload');
    return { id, name: `${this.names.get(id) ?? `User ${id}`} (reloaded)`, since: new Date(0) };
  }

  @CacheEvict({ allEntries: true })
  async forgetEverything(): Promise<void> {}
}

@Controller('s')
class ScenarioController {
  calls: Record<string, number> = {};
  private items = new Map<string, { id: string; v: number }>();

  private count(what: string) {
    this.calls[what] = (this.calls[what] ?? 0) + 1;
  }

  @Get('me')
  @Cacheable()
  me(@Req() req: { user?: { id?: string } }) {
    this.count('me');
    return { user: req.user?.id ?? null, secret: `private data of ${req.user?.id ?? 'nobody'}` };
  }

  @Get('shared')
  @Cacheable({ scope: 'global' })
  shared() {
    this.count('shared');
    return { n: this.calls.shared };
  }

  @Get('fail/:code')
  @Cacheable()
  fail(@Param('code') code: string) {
    this.count(`fail:${code}`);
    throw new HttpException('failed on purpose', Number(code));
  }

  @Get('no-store')
  @Cacheable()
  noStore(@Res({ passthrough: true }) res: { header(n: string, v: string): void }) {
    this.count('no-store');
    res.header('Cache-Control', 'no-store');
    return { fresh: true };
  }

  @Get('accepted')
  @HttpCode(202)
  @Cacheable()
  accepted() {
    this.count('accepted');
    return { queued: true };
  }

  @Get('text')
  @Cacheable()
  text() {
    this.count('text');
    return 'plain text body';
  }

  @Get('unless')
  @Cacheable({ unless: (r: { empty: boolean }) => r.empty })
  unless() {
    this.count('unless');
    return { empty: true };
  }

  @Post('search')
  @Cacheable({ methods: ['POST'], key: (req: { body: unknown }) => `search:${JSON.stringify(req.body)}` })
  search(@Body() body: { q: string }) {
    this.count('search');
    return { q: body.q, results: [1, 2, 3] };
  }

  @Post('not-opted-in')
  @Cacheable()
  notOptedIn() {
    this.count('not-opted-in');
    return { ok: true };
  }

  @Get('swr')
  @Cacheable({ profile: 'swr' })
  async swr() {
    this.count('swr');
    await sleep(20);
    return { version: this.calls.swr };
  }

  @Get('items/:id')
  @Cacheable({ tags: (req: { params: { id: string } }) => [`item:${req.params.id}`] })
  getItem(@Param('id') id: string) {
    this.count('get-item');
    return this.items.get(id) ?? { id, v: 0 };
  }

  @Put('items/:id')
  @CachePut({ tags: (req: { params: { id: string } }) => [`item:${req.params.id}`] })
  putItem(@Param('id') id: string, @Body() body: { v: number }) {
    const item = { id, v: body.v };
    this.items.set(id, item);
    return item;
  }

  @Post('items/:id/touch')
  @CacheEvict({ tags: (req: { params: { id: string } }) => [`item:${req.params.id}`] })
  touch(@Param('id') id: string) {
    const item = this.items.get(id) ?? { id, v: 0 };
    this.items.set(id, { id, v: item.v + 100 });
    return { touched: id };
  }
}

describe.each(['fastify', 'express'] as const)('decorators on %s', (adapter) => {
  let server: RedisServer;
  let app: INestApplication;
  let base: string;
  let cache: CacheService;
  let repo: UsersRepository;
  let controller: ScenarioController;

  beforeAll(async () => {
    server = await RedisServer.start();
    @Module({
      imports: [
        RedisClientModule.forRoot({ ...fastRedisOptions, url: server.url() }),
        CacheModule.forRoot({ ttl: 60_000, profiles: { swr: { ttl: 300, staleWhileRevalidate: 10_000 } } }),
      ],
      controllers: [ScenarioController],
      providers: [
        UsersRepository,
        { provide: APP_GUARD, useClass: HeaderAuthGuard },
        { provide: APP_INTERCEPTOR, useClass: CacheInterceptor },
      ],
    })
    class ScenarioModule {}
    const module = await Test.createTestingModule({ imports: [ScenarioModule] }).compile();
    app = module.createNestApplication(adapter === 'fastify' ? new FastifyAdapter() : new ExpressAdapter(), {
      logger: false,
    });
    await app.listen(0, '127.0.0.1');
    base = `http://127.0.0.1:${(app.getHttpServer().address() as { port: number }).port}`;
    cache = app.get(CacheService);
    repo = app.get(UsersRepository);
    controller = app.get(ScenarioController);
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
  const send = (method: string, path: string, body: unknown) =>
    request(base + path, {
      method,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  const xCache = (r: HttpResult) => r.headers['x-cache'];

  describe('service methods', () => {
    it('@Cacheable caches by the key function, round-trips Dates, and serves later calls from the cache', async () => {
      const first = await repo.find('u1');
      const second = await repo.find('u1');
      expect(second).toEqual({ id: 'u1', name: 'User u1', since: new Date(0) });
      expect(second.since).toBeInstanceOf(Date);
      expect(first).toEqual(second);
      expect(repo.calls.find).toBe(1);
      expect(await cache.get('user:u1')).toEqual(second);
    });

    it('@Cacheable without a key keys by class, method and the arguments (object key order ignored)', async () => {
      expect(await repo.total(1, { x: 2, y: 3 })).toBe(6);
      expect(await repo.total(1, { y: 3, x: 2 })).toBe(6);
      expect(await repo.total(2, { x: 2, y: 3 })).toBe(7);
      expect(repo.calls.total).toBe(2);
      expect(await cache.get('UsersRepository.total:[1,{"x":2,"y":3}]')).toBe(6);
    });

    it('honours condition (skip the cache) and unless (do not store this result)', async () => {
      await repo.maybe('skip');
      await repo.maybe('skip');
      expect(repo.calls.maybe).toBe(2);
      expect(await repo.maybe('none')).toBeNull();
      expect(await repo.maybe('none')).toBeNull();
      expect(repo.calls.maybe).toBe(4);
      await repo.maybe('kept');
      await repo.maybe('kept');
      expect(repo.calls.maybe).toBe(5);
    });

    it('@CacheEvict by tag after the method, @CachePut stores the result, allEntries clears the profile', async () => {
      await repo.find('u2');
      await repo.rename('u2', 'Renamed');
      expect((await repo.find('u2')).name).toBe('Renamed');
      expect(repo.calls.find).toBe(3); // u1, u2, u2 again after the eviction

      await repo.reload('u2');
      expect((await repo.find('u2')).name).toBe('Renamed (reloaded)');
      expect(repo.calls.find).toBe(3);

      await repo.forgetEverything();
      expect(await cache.get('user:u2')).toBeUndefined();
    });
  });

  describe('routes', () => {
    it('per-user leak (RELIABILITY): two users on one authenticated route never get each other’s body', async () => {
      let leaks = 0;
      let responses = 0;
      const users = ['alice', 'bob'];
      for (let round = 0; round < 25; round++) {
        const batch = await Promise.all(
          Array.from({ length: 8 }, (_, i) => users[(i + round) % 2]).map(async (user) => ({
            user,
            res: await get('/s/me', { 'x-user': user }),
          })),
        );
        for (const { user, res } of batch) {
          responses++;
          expect(res.status).toBe(200);
          if (res.body.user !== user || res.body.secret !== `private data of ${user}`) leaks++;
        }
      }
      expect(responses).toBe(200);
      expect(leaks).toBe(0);
      expect(controller.calls.me).toBe(2); // one per user: both were cached, separately
      const anon = await get('/s/me');
      expect(anon.body).toEqual({ user: null, secret: 'private data of nobody' });
      expect(controller.calls.me).toBe(3);
    });

    it('a user without an id is never cached (sharing could leak); scope global shares one entry', async () => {
      const before = controller.calls.me;
      for (let i = 0; i < 3; i++) {
        const r = await get('/s/me', { 'x-user': 'nameless' });
        expect(xCache(r)).toBeUndefined();
      }
      expect(controller.calls.me - before).toBe(3);
      const a = await get('/s/shared', { 'x-user': 'alice' });
      const b = await get('/s/shared', { 'x-user': 'bob' });
      expect(xCache(a)).toBe('MISS');
      expect(xCache(b)).toBe('HIT');
      expect(b.text).toBe(a.text);
    });

    it('caches successful responses only: errors and no-store responses run the handler every time', async () => {
      for (let i = 0; i < 2; i++) {
        expect((await get('/s/fail/500')).status).toBe(500);
        expect((await get('/s/fail/404')).status).toBe(404);
        const ns = await get('/s/no-store');
        expect(ns.status).toBe(200);
        expect(ns.body).toEqual({ fresh: true });
      }
      expect(controller.calls['fail:500']).toBe(2);
      expect(controller.calls['fail:404']).toBe(2);
      expect(controller.calls['no-store']).toBe(2);
    });

    it('keeps the route status (@HttpCode) and the content type of a text body on a hit', async () => {
      const miss = await get('/s/accepted');
      const hit = await get('/s/accepted');
      expect([miss.status, hit.status]).toEqual([202, 202]);
      expect(xCache(hit)).toBe('HIT');
      const t1 = await get('/s/text');
      const t2 = await get('/s/text');
      expect(t2.text).toBe('plain text body');
      expect(xCache(t2)).toBe('HIT');
      expect(t2.headers['content-type']).toBe(t1.headers['content-type']);
      expect(controller.calls.text).toBe(1);
    });

    it('honours unless on a route', async () => {
      await get('/s/unless');
      await get('/s/unless');
      expect(controller.calls.unless).toBe(2);
    });

    it('caches GET only, unless a route opts a method in; the query is part of the key, in any order', async () => {
      await send('POST', '/s/not-opted-in', {});
      await send('POST', '/s/not-opted-in', {});
      expect(controller.calls['not-opted-in']).toBe(2);
      const s1 = await send('POST', '/s/search', { q: 'redis' });
      const s2 = await send('POST', '/s/search', { q: 'redis' });
      const s3 = await send('POST', '/s/search', { q: 'nest' });
      expect([xCache(s1), xCache(s2), xCache(s3)]).toEqual(['MISS', 'HIT', 'MISS']);
      expect(s2.status).toBe(201);
      const q1 = await get('/s/items/q?a=1&b=2');
      const q2 = await get('/s/items/q?b=2&a=1');
      const q3 = await get('/s/items/q?a=1&b=3');
      expect([xCache(q1), xCache(q2), xCache(q3)]).toEqual(['MISS', 'HIT', 'MISS']);
    });

    it('X-Cache: STALE within stale-while-revalidate, refreshed once in the background', async () => {
      const first = await get('/s/swr');
      expect(xCache(first)).toBe('MISS');
      await sleep(350);
      const stale = await Promise.all([get('/s/swr'), get('/s/swr'), get('/s/swr')]);
      expect(stale.map(xCache)).toEqual(['STALE', 'STALE', 'STALE']);
      expect(stale.every((r) => r.text === first.text)).toBe(true);
      let fresh: HttpResult | undefined;
      await waitFor(
        'the refreshed entry',
        2_000,
        async () => xCache((fresh = await get('/s/swr'))) === 'HIT',
      );
      expect(fresh!.body.version).toBe(2);
      expect(controller.calls.swr).toBe(2);
    });

    it('@CachePut on PUT refreshes what GET serves; @CacheEvict on POST evicts it', async () => {
      const calls = controller.calls['get-item'] ?? 0;
      const v0 = await get('/s/items/7');
      expect(v0.body).toEqual({ id: '7', v: 0 });
      expect(xCache(await get('/s/items/7'))).toBe('HIT');
      const put = await send('PUT', '/s/items/7', { v: 5 });
      expect(put.body).toEqual({ id: '7', v: 5 });
      const afterPut = await get('/s/items/7');
      expect(xCache(afterPut)).toBe('HIT');
      expect(afterPut.body).toEqual({ id: '7', v: 5 });
      expect(controller.calls['get-item'] - calls).toBe(1);

      await send('POST', '/s/items/7/touch', {});
      const afterEvict = await get('/s/items/7');
      expect(xCache(afterEvict)).toBe('MISS');
      expect(afterEvict.body).toEqual({ id: '7', v: 105 });
    });
  });
});
