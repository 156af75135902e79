// Issue 13 items 2–3 on the real gateway (createApp, real port, real redis-server), on both HTTP adapters:
// `GET /boards/:id` declares `query: []`, so 1,000 random `?cb=` values are 1 upstream call and 1 entry
// (RELIABILITY "cache busting"); an anonymous request carrying a cookie bypasses the shared entry
// (RELIABILITY "credentialed requests", the rule in docs/cache.md).
import type { INestApplication } from '@nestjs/common';
import { RedisClientManager } from '@redwing/redis';
import { request } from '../../../libs/cache/test/helpers';
import { RedisServer, stopAll } from '../../../test/harness';
import { BoardsService } from '../src/boards/boards.service';
import type { HttpAdapterName } from '../src/config/gateway-env.schema';
import { serveGateway, untilCacheSynced } from './support';

afterAll(() => stopAll());

describe.each<[HttpAdapterName, number]>([
  ['fastify', 700],
  ['express', 800],
])('GET /boards/:id cache keys on %s', (adapter, id) => {
  let redis: RedisServer;
  let app: INestApplication;
  let base: string;
  let upstream: BoardsService;

  beforeAll(async () => {
    redis = await RedisServer.start();
    ({ app, base } = await serveGateway(adapter, {
      REDIS_URL: redis.url(),
      REDIS_DURABLE_URL: undefined,
      UPSTREAM_DELAY_MS: '0',
      LOG_LEVEL: 'fatal',
    }));
    upstream = app.get(BoardsService);
    await untilCacheSynced(base);
  });

  afterAll(async () => {
    await app?.close();
    await redis?.stop();
  });

  it('1,000 random values of ?cb: 1 upstream call, 1 entry', async () => {
    const before = upstream.calls.board;
    let ok = 0;
    for (let batch = 0; batch < 100; batch++) {
      const all = await Promise.all(
        Array.from({ length: 10 }, () =>
          request(`${base}/boards/${id}?cb=${Math.random().toString(36).slice(2)}`),
        ),
      );
      ok += all.filter((r) => r.status === 200 && r.body.id === id).length;
    }
    expect(ok).toBe(1_000);
    expect(upstream.calls.board - before).toBe(1);
    const conn = app.get(RedisClientManager).get().command;
    const [, keys] = await conn.scan('0', 'MATCH', `*:cache:kanban:*/boards/${id}*`, 'COUNT', 10_000);
    expect(keys).toHaveLength(1);
  }, 60_000);

  it('an anonymous request with a cookie is not served from, nor stored in, the shared entry', async () => {
    const board = id + 1;
    const shared = await request(`${base}/boards/${board}`);
    expect(shared.headers['x-cache']).toBe('MISS');
    const before = upstream.calls.board;
    const withCookie = await request(`${base}/boards/${board}`, { headers: { cookie: 'theme=dark' } });
    expect(withCookie.status).toBe(200);
    expect(withCookie.headers['x-cache']).toBeUndefined();
    expect(upstream.calls.board - before).toBe(1);
    expect((await request(`${base}/boards/${board}`)).headers['x-cache']).toBe('HIT');
  });
});
