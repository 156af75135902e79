import { Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { LockMethodExplorer } from './lock-method.explorer';
import { ConfigurableLockModule } from './lock.module-definition';
import { LockService } from './lock.service';

/**
 * Distributed locks with fencing tokens, `using()` with automatic extension, `@WithLock()` and leader
 * election, on the `@redwing/redis` connection manager (import `RedisClientModule` in the app). One client
 * by default; name three or five clients on independent masters for a redlock quorum.
 * @example
 * ```ts
 * imports: [
 *   RedisClientModule.forRoot({ url: process.env.REDIS_URL }),
 *   LockModule.forRoot({ ttl: 30_000, wait: 10_000, isGlobal: true }),
 * ],
 * ```
 */
@Module({
  imports: [DiscoveryModule],
  providers: [LockService, LockMethodExplorer],
  exports: [LockService],
})
export class LockModule extends ConfigurableLockModule {}
