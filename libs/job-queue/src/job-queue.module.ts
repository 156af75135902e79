import { Module, type DynamicModule, type Provider } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { getQueueToken } from './job-queue.decorators';
import type { RegisterQueueOptions } from './job-queue.interfaces';
import { ConfigurableJobQueueModule } from './job-queue.module-definition';
import { JobQueueService } from './job-queue.service';

/** Holds the `JobQueue` providers of one `registerQueue()` call. @internal */
@Module({})
export class JobQueueRegistrationModule {}

/**
 * Job queues on BullMQ over the `@redwing/redis` client (`durable` when configured): `forRoot()` once (global),
 * `registerQueue({ name })` per queue, `@Processor()` classes to run jobs, `JobQueueService` /
 * `@InjectQueue(name)` to enqueue. Needs `RedisClientModule` in the app.
 * @example
 * \@Module({
 *   imports: [
 *     RedisClientModule.forRoot({ clients: { durable: { url: process.env.REDIS_DURABLE_URL } } }),
 *     JobQueueModule.forRoot(),
 *     JobQueueModule.registerQueue({ name: 'emails', attempts: 5 }),
 *   ],
 *   providers: [EmailsProcessor],
 * })
 * export class AppModule {}
 */
@Module({
  imports: [DiscoveryModule],
  providers: [JobQueueService],
  exports: [JobQueueService],
})
export class JobQueueModule extends ConfigurableJobQueueModule {
  /**
   * Register queues: each becomes injectable with `@InjectQueue(name)` and processable by a `@Processor(name)`.
   * @throws JobQueueConfigError at start-up naming the invalid option
   */
  static registerQueue(...queues: RegisterQueueOptions[]): DynamicModule {
    const providers: Provider[] = queues.map((options) => ({
      provide: getQueueToken(options?.name),
      useFactory: (service: JobQueueService) => service.register(options),
      inject: [JobQueueService],
    }));
    return {
      module: JobQueueRegistrationModule,
      providers,
      exports: providers.map((p) => (p as { provide: string }).provide),
    };
  }
}
