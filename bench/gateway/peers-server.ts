// Child process of the gateway scenario: the two peers of the real gateway, Nest 12 + Fastify like it,
// each serving `GET /boards/:id` for the boards the gateway answered during the warm-up (the file named by
// BENCH_GATEWAY_BOARDS: `{ "<id>": <board JSON> }`), so every side sends the same bodies.
//   bare           the route returns the board from a Map: what Nest + Fastify cost with no cache, no guard,
//                  no metrics (the ceiling)
//   cacheManager   the same route behind @nestjs/cache-manager's CacheInterceptor (global) with a keyv Redis
//                  store (@keyv/redis) on the bench Redis, as in bench/cache/route-server.ts: after the
//                  warm-up every request is a hit read from Redis
import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import KeyvRedis from '@keyv/redis';
import { Controller, Get, Module, NotFoundException, Param } from '@nestjs/common';
import {
  CacheInterceptor as NestCacheInterceptor,
  CacheModule as NestCacheModule,
} from '@nestjs/cache-manager';
import { APP_INTERCEPTOR, NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { listen, ready, serve, serverMain } from '../lib/server';

const url = process.env.BENCH_REDIS_URL!;
/** Long enough that nothing expires during a run: every request after the warm-up is a hit. */
const TTL = 600_000;

const boards = new Map<string, unknown>(
  Object.entries(JSON.parse(readFileSync(process.env.BENCH_GATEWAY_BOARDS!, 'utf8')) as object),
);

@Controller('boards')
class BoardsController {
  @Get(':id')
  get(@Param('id') id: string): unknown {
    const board = boards.get(id);
    if (board === undefined) throw new NotFoundException();
    return board;
  }
}

@Module({ controllers: [BoardsController] })
class BareModule {}

@Module({
  imports: [NestCacheModule.register({ stores: [new KeyvRedis(url)], ttl: TTL })],
  controllers: [BoardsController],
  providers: [{ provide: APP_INTERCEPTOR, useClass: NestCacheInterceptor }],
})
class CacheManagerModule {}

serverMain('gateway peers-server', async () => {
  const options = { logger: ['error' as const, 'warn' as const] };
  const bare = await NestFactory.create(BareModule, new FastifyAdapter(), options);
  const cacheManager = await NestFactory.create(CacheManagerModule, new FastifyAdapter(), options);
  const ports = { bare: await listen(bare), cacheManager: await listen(cacheManager) };
  serve([bare, cacheManager]);
  ready(ports);
});
