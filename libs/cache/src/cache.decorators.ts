import { Reflector } from '@nestjs/core';
import type { CacheableOptions, CacheEvictOptions, CachePutOptions } from './cache.interfaces';

/**
 * Caches the result of a controller route (through the global `CacheInterceptor`) or of a provider method.
 * Sets metadata only. On a class it applies to every route of the controller; a method's own decorator wins.
 *
 * Routes: GET only unless `methods` says otherwise; successful responses only; keyed by method, path and
 * sorted query (only the `query` allow-list when given), and by the user when `request.user` is present
 * (unless `scope: 'global'`); a request with `Authorization` or `Cookie` and no user bypasses the cache
 * unless the route opts in (`scope: 'global'`, or `vary`); `X-Cache: HIT|MISS|STALE`, `ETag` with
 * `If-None-Match` → 304, and request/response `Cache-Control: no-store` honoured. Methods must return a
 * Promise; their default key is `Class.method:<arguments>`.
 * @example
 * ```ts
 * @Get(':id')
 * @Cacheable({ ttl: 30_000, tags: (req) => [`board:${req.params.id}`], profile: 'kanban', query: [] })
 * get(@Param('id') id: string) { ... }
 *
 * @Cacheable({ key: (id: string) => `user:${id}`, ttl: 60_000 })
 * async findUser(id: string): Promise<User> { ... }
 * ```
 */
export const Cacheable = Reflector.createDecorator<CacheableOptions | undefined, CacheableOptions>({
  key: 'redwing:cache:cacheable',
  transform: (options) => options ?? {},
});

/**
 * After the route or method succeeds, deletes the given keys, every entry with the given tags (all
 * profiles, all instances), or the whole profile (`allEntries`). Sets metadata only.
 * @example
 * ```ts
 * @Post(':id/cards')
 * @CacheEvict({ tags: (req) => [`board:${req.params.id}`] })
 * addCard() { ... }
 * ```
 */
export const CacheEvict = Reflector.createDecorator<CacheEvictOptions | undefined, CacheEvictOptions>({
  key: 'redwing:cache:evict',
  transform: (options) => options ?? {},
});

/**
 * Always runs the route or method, then stores its result. On a route the default key is the one
 * `@Cacheable` gives a GET of the same URL, so `PUT /boards/1` refreshes what `GET /boards/1` serves.
 * Sets metadata only.
 * @example
 * ```ts
 * @Put(':id')
 * @CachePut({ tags: (req) => [`board:${req.params.id}`] })
 * replace(@Param('id') id: string, @Body() board: Board) { ... }
 * ```
 */
export const CachePut = Reflector.createDecorator<CachePutOptions | undefined, CachePutOptions>({
  key: 'redwing:cache:put',
  transform: (options) => options ?? {},
});
