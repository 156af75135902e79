import { Module } from '@nestjs/common';
import { ConfigurablePubSubModule } from './pubsub.module-definition';
import { PubSubService } from './pubsub.service';

/**
 * Pub/sub between app instances on the `@redwing/redis` connection manager: ephemeral messages (Redis
 * pub/sub, sharded on Cluster) and resumable events (Redis Streams with bounded retention). Needs
 * `RedisClientModule` (global) in the app.
 * @example
 * ```ts
 * imports: [
 *   RedisClientModule.forRoot({ url: process.env.REDIS_URL }),
 *   PubSubModule.forRoot({ retention: { maxEvents: 1_000, maxAge: 600_000 } }),
 * ],
 * ```
 */
@Module({
  providers: [PubSubService],
  exports: [PubSubService],
})
export class PubSubModule extends ConfigurablePubSubModule {}
