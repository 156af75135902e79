// Child process of cache-route and cache-route-overhead: three Nest 12 + Fastify apps on free ports, all with
// the same trivial JSON route.
//   ours   @Cacheable through the global CacheInterceptor: GET /l1 (L1 + Redis), GET /l2 (Redis only)
//   peer   @nestjs/cache-manager's CacheInterceptor (global) with a keyv Redis store (@keyv/redis): GET /item
//   plain  no cache at all: GET /item
//   noop   no cache, but a global interceptor that only calls next.handle(): GET /item (what any interceptor costs)
// Everything is cached for 10 minutes, so after the warm-up every request is a hit.
import 'reflect-metadata';
import KeyvRedis from '@keyv/redis';
import {
  Controller,
  Get,
  Injectable,
  Module,
  type CallHandler,
  type ExecutionContext,
  type NestInterceptor,
} from '@nestjs/common';
import type { Observable } from 'rxjs';
import {
  CacheInterceptor as NestCacheInterceptor,
  CacheModule as NestCacheModule,
} from '@nestjs/cache-manager';
import { APP_INTERCEPTOR, NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { CacheInterceptor, CacheService, Cacheable } from '@redwing/cache';
import { listen, ready, serve, serverMain } from '../lib/server';
import { oursCacheImports, TTL, VALUE as BODY } from './common';

const url = process.env.BENCH_REDIS_URL!;

@Controller()
class OursController {
  @Get('l1')
  @Cacheable({ profile: 'l1' })
  l1() {
    return BODY;
  }

  @Get('l2')
  @Cacheable({ profile: 'l2' })
  l2() {
    return BODY;
  }
}

@Module({
  imports: oursCacheImports(url),
  controllers: [OursController],
  providers: [{ provide: APP_INTERCEPTOR, useClass: CacheInterceptor }],
})
class OursModule {}

@Controller()
class ItemController {
  @Get('item')
  item() {
    return BODY;
  }
}

@Module({
  imports: [NestCacheModule.register({ stores: [new KeyvRedis(url)], ttl: TTL })],
  controllers: [ItemController],
  providers: [{ provide: APP_INTERCEPTOR, useClass: NestCacheInterceptor }],
})
class PeerModule {}

@Module({ controllers: [ItemController] })
class PlainModule {}

@Injectable()
class NoopInterceptor implements NestInterceptor {
  intercept(_context: ExecutionContext, next: CallHandler): Observable<unknown> {
    return next.handle();
  }
}

@Module({
  controllers: [ItemController],
  providers: [{ provide: APP_INTERCEPTOR, useClass: NoopInterceptor }],
})
class NoopModule {}

serverMain('route-server', async () => {
  const options = { logger: ['error' as const, 'warn' as const] };
  const ours = await NestFactory.create(OursModule, new FastifyAdapter(), options);
  const peer = await NestFactory.create(PeerModule, new FastifyAdapter(), options);
  const plain = await NestFactory.create(PlainModule, new FastifyAdapter(), options);
  const noop = await NestFactory.create(NoopModule, new FastifyAdapter(), options);
  const ports = {
    ours: await listen(ours),
    peer: await listen(peer),
    plain: await listen(plain),
    noop: await listen(noop),
  };
  const cache = ours.get(CacheService);
  serve([ours, peer, plain, noop], { stats: () => cache.stats({ redis: false }) });
  ready(ports);
});
