import { Module } from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import { CacheInterceptor } from '@redwing/cache';
import { CacheStatsController } from './cache-stats.controller';

/**
 * The gateway's HTTP side of the cache: `GET /cache/stats`, and `CacheInterceptor` registered globally (the
 * one line that makes `@Cacheable` / `@CacheEvict` / `@CachePut` work on every route).
 */
@Module({
  controllers: [CacheStatsController],
  providers: [{ provide: APP_INTERCEPTOR, useClass: CacheInterceptor }],
})
export class CacheStatsModule {}
