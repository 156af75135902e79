import { Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { CacheMethodExplorer } from './cache-method.explorer';
import { CacheInterceptor } from './cache.interceptor';
import { ConfigurableCacheModule } from './cache.module-definition';
import { CacheService } from './cache.service';

/**
 * Two-tier cache (in-process L1 + Redis) on the `@redwing/redis` connection manager. Needs
 * `RedisClientModule` (global) in the app. Register `CacheInterceptor` globally to cache routes;
 * decorated provider methods are wrapped at start-up.
 * @example
 * ```ts
 * imports: [
 *   RedisClientModule.forRoot({ url: process.env.REDIS_URL }),
 *   CacheModule.forRoot({ ttl: 60_000, profiles: { kanban: { ttl: 10_000, staleWhileRevalidate: 30_000 } } }),
 * ],
 * providers: [{ provide: APP_INTERCEPTOR, useClass: CacheInterceptor }],
 * ```
 */
@Module({
  imports: [DiscoveryModule],
  providers: [CacheService, CacheInterceptor, CacheMethodExplorer],
  exports: [CacheService, CacheInterceptor],
})
export class CacheModule extends ConfigurableCacheModule {}
