// The Kanban routes of the real gateway (createApp, listening on a real port) on both HTTP adapters, against
// a real redis-server: @Cacheable on GET /boards/:id (X-Cache, ETag/304, Cache-Control), @CacheEvict on
// POST /boards/:id/cards, the service-level cache of GET /boards, input validation, and GET /cache/stats.
import type { INestApplication } from '@nestjs/common';
import { request, type HttpResult } from '../../../libs/cache/test/helpers';
import { RedisServer, stopAll } from '../../../test/harness';
import { BoardsService } from '../src/boards/boards.service';
import type { HttpAdapterName } from '../src/config/gateway-env.schema';
import { postJson, serveGateway, untilCacheSynced } from './support';

afterAll(() => stopAll());

const UPSTREAM_DELAY_MS = 30;

interface Res {
  status: number;
  headers: { get(name: string): string | null };
  text: string;
  body: any;
}

/** `result` with fetch's `headers.get()`. */
function withGet(result: HttpResult): Res {
  const { headers } = result;
  return { ...result, headers: { get: (n) => (headers[n.toLowerCase()] as string | undefined) ?? null } };
}

/** One HTTP request with exactly the headers given (not fetch(): see `request`). */
const call = async (
  base: string,
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Res> => withGet(await request(base + path, init));

const post = async (base: string, path: string, body: unknown, raw = false) =>
  withGet(await postJson(base, path, body, raw));

describe.each<[HttpAdapterName, number]>([
  ['fastify', 100],
  ['express', 300],
])('boards on %s', (adapter, firstId) => {
  let redis: RedisServer;
  let app: INestApplication;
  let base: string;
  let upstream: BoardsService;
  let nextId = firstId;
  const boardId = () => nextId++;

  beforeAll(async () => {
    redis = await RedisServer.start();
    ({ app, base } = await serveGateway(adapter, {
      REDIS_URL: redis.url(),
      REDIS_DURABLE_URL: undefined,
      UPSTREAM_DELAY_MS: String(UPSTREAM_DELAY_MS),
      CACHE_BOARDS_TTL: '30000',
      LOG_LEVEL: 'fatal',
    }));
    upstream = app.get(BoardsService);
    await untilCacheSynced(base);
  });

  afterAll(async () => {
    await app?.close();
    await redis?.stop();
  });

  it('caches GET /boards/:id: MISS then HIT with the same body and ETag, one upstream call', async () => {
    const id = boardId();
    const before = upstream.calls.board;
    const miss = await call(base, `/boards/${id}`);
    expect(miss.status).toBe(200);
    expect(miss.headers.get('x-cache')).toBe('MISS');
    expect(miss.headers.get('content-type')).toMatch(/^application\/json/);
    expect(miss.body).toMatchObject({ id, name: `Board ${id}`, columns: ['todo', 'doing', 'done'] });
    const etag = miss.headers.get('etag');
    expect(etag).toMatch(/^"[\w-]+"$/);

    const hit = await call(base, `/boards/${id}`);
    expect(hit.status).toBe(200);
    expect(hit.headers.get('x-cache')).toBe('HIT');
    expect(hit.headers.get('content-type')).toMatch(/^application\/json/);
    expect(hit.headers.get('etag')).toBe(etag);
    expect(hit.text).toBe(miss.text);
    expect(upstream.calls.board - before).toBe(1);
  });

  it('answers If-None-Match with 304 and no body, on a hit and on a miss', async () => {
    const id = boardId();
    const first = await call(base, `/boards/${id}`);
    const etag = first.headers.get('etag')!;
    const hit304 = await call(base, `/boards/${id}`, { headers: { 'if-none-match': etag } });
    expect(hit304.status).toBe(304);
    expect(hit304.text).toBe('');
    expect(hit304.headers.get('etag')).toBe(etag);
    expect(hit304.headers.get('x-cache')).toBe('HIT');
    const weak = await call(base, `/boards/${id}`, { headers: { 'if-none-match': `"nope", W/${etag}` } });
    expect(weak.status).toBe(304);
    const other = await call(base, `/boards/${id}`, { headers: { 'if-none-match': '"something-else"' } });
    expect(other.status).toBe(200);
    expect(other.text).toBe(first.text);

    // A miss (no-cache forces one) with a matching tag also ends in 304.
    const revalidated = await call(base, `/boards/${id}`, {
      headers: { 'if-none-match': '*', 'cache-control': 'no-cache' },
    });
    expect(revalidated.status).toBe(304);
    expect(revalidated.headers.get('x-cache')).toBe('MISS');
  });

  it('honours request Cache-Control: no-store (bypass) and no-cache (refresh and store)', async () => {
    const id = boardId();
    await call(base, `/boards/${id}`);
    const before = upstream.calls.board;
    const noStore = await call(base, `/boards/${id}`, { headers: { 'cache-control': 'no-store' } });
    expect(noStore.status).toBe(200);
    expect(noStore.headers.get('x-cache')).toBe('MISS');
    expect(upstream.calls.board - before).toBe(1);

    const noCache = await call(base, `/boards/${id}`, { headers: { 'cache-control': 'no-cache' } });
    expect(noCache.headers.get('x-cache')).toBe('MISS');
    expect(upstream.calls.board - before).toBe(2);
    const after = await call(base, `/boards/${id}`);
    expect(after.headers.get('x-cache')).toBe('HIT');
    // The no-cache response replaced the entry (its fetchedAt is the newer one).
    expect(after.body.fetchedAt).toBe(noCache.body.fetchedAt);
    expect(upstream.calls.board - before).toBe(2);
  });

  it('POST /boards/:id/cards adds the card and evicts the board: the next GET is a MISS with the card', async () => {
    const id = boardId();
    const v1 = await call(base, `/boards/${id}`);
    expect((await call(base, `/boards/${id}`)).headers.get('x-cache')).toBe('HIT');

    const created = await post(base, `/boards/${id}/cards`, { title: '  Write the cache docs  ' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      boardId: id,
      card: { title: 'Write the cache docs', column: 'todo' },
    });

    const v2 = await call(base, `/boards/${id}`);
    expect(v2.headers.get('x-cache')).toBe('MISS');
    expect(v2.body.version).toBe(v1.body.version + 1);
    expect(v2.body.cards.map((c: { title: string }) => c.title)).toContain('Write the cache docs');
    expect(v2.headers.get('etag')).not.toBe(v1.headers.get('etag'));
    expect((await call(base, `/boards/${id}`)).headers.get('x-cache')).toBe('HIT');
  });

  it.each([
    ['no body', undefined],
    ['an array', []],
    ['a missing title', {}],
    ['a number title', { title: 42 }],
    ['an empty title', { title: '   ' }],
    ['a 201-character title', { title: 'x'.repeat(201) }],
    ['an unknown field', { title: 'ok', column: 'done' }],
  ])('answers 400 to a card with %s, and changes nothing', async (_what, body) => {
    const id = boardId();
    const before = (await call(base, `/boards/${id}`)).body.version;
    const res = await post(base, `/boards/${id}/cards`, body);
    expect(res.status).toBe(400);
    expect(res.body.message).toEqual(expect.any(String));
    const after = await call(base, `/boards/${id}`);
    expect(after.headers.get('x-cache')).toBe('HIT');
    expect(after.body.version).toBe(before);
  });

  it('answers 400 to malformed JSON, 400 to a bad id and 404 to an unknown board', async () => {
    expect((await post(base, `/boards/${boardId()}/cards`, '{"title": ', true)).status).toBe(400);
    expect((await post(base, '/boards/007/cards', { title: 'x' })).status).toBe(400);
    expect((await post(base, '/boards/999999/cards', { title: 'x' })).status).toBe(404);
    expect((await call(base, '/boards/abc')).status).toBe(400);
  });

  it('never caches an error: a 404 board calls the upstream every time', async () => {
    const before = upstream.calls.board;
    for (let i = 0; i < 3; i++) {
      const res = await call(base, '/boards/999999');
      expect(res.status).toBe(404);
      expect(res.headers.get('x-cache')).toBeNull();
    }
    expect(upstream.calls.board - before).toBe(3);
  });

  it('serves 50 concurrent requests for a cold board with one upstream call', async () => {
    const id = boardId();
    const before = upstream.calls.board;
    const all = await Promise.all(Array.from({ length: 50 }, () => call(base, `/boards/${id}`)));
    expect(all.every((r) => r.status === 200)).toBe(true);
    expect(new Set(all.map((r) => r.text)).size).toBe(1);
    expect(upstream.calls.board - before).toBe(1);
  });

  it('caches GET /boards in the service and evicts it when a card is added', async () => {
    const page = await call(base, '/boards?offset=0&limit=10');
    expect(page.status).toBe(200);
    expect(page.body).toMatchObject({ total: 1_000, offset: 0, limit: 10 });
    expect(page.body.boards).toHaveLength(10);
    const before = upstream.calls.list;
    expect((await call(base, '/boards?offset=0&limit=10')).text).toBe(page.text);
    expect(upstream.calls.list).toBe(before);

    await post(base, '/boards/3/cards', { title: 'changes the list' });
    const after = await call(base, '/boards?offset=0&limit=10');
    expect(upstream.calls.list).toBe(before + 1);
    expect(after.body.boards[2].version).toBe(page.body.boards[2].version + 1);
    expect((await call(base, '/boards?limit=500')).status).toBe(400);
  });

  it('GET /cache/stats reports counts, hit rate, L1, Redis memory, namespace keys and recommendations', async () => {
    // The namespace key count is reused for a few seconds; wait for one taken after the entries above.
    let res = await call(base, '/cache/stats');
    for (let i = 0; i < 100 && res.body.redis.keys.entries === 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      res = await call(base, '/cache/stats');
    }
    const { status, body } = res;
    expect(status).toBe(200);
    expect(body).toMatchObject({
      hits: expect.any(Number),
      misses: expect.any(Number),
      stale: expect.any(Number),
      loads: expect.any(Number),
      hitRate: expect.any(Number),
      l1: { entries: expect.any(Number), bytes: expect.any(Number), maxEntries: 20_000 },
      invalidation: { enabled: true, synced: true },
      redis: {
        available: true,
        maxmemory: 0,
        maxmemoryPolicy: 'noeviction',
        usedMemory: expect.any(Number),
        keys: { total: expect.any(Number), entries: expect.any(Number), complete: true },
      },
    });
    expect(body.hits).toBeGreaterThan(0);
    expect(body.profiles.kanban.hits).toBeGreaterThan(0);
    expect(body.redis.keys.entries).toBeGreaterThan(0);
    expect(body.recommendations.map((r: { code: string }) => r.code)).toEqual(
      expect.arrayContaining(['no-maxmemory', 'noeviction']),
    );
  });
});
