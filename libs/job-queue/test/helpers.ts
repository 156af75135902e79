// Boots small Nest apps around JobQueueModule for the integration tests.
import {
  Module,
  type INestApplicationContext,
  type LoggerService,
  type Provider,
  type Type,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { RedisClientModule, type RedisClientModuleOptions } from '@redwing/redis';
import {
  JobQueueModule,
  JobQueueService,
  type JobQueueModuleOptions,
  type RegisterQueueOptions,
} from '@redwing/job-queue';
import { fastRedisOptions } from '../../../test/harness';

export {
  CapturingLogger,
  fastRedisOptions,
  RedisCluster,
  RedisServer,
  sleep,
  stopAll,
  waitFor,
} from '../../../test/harness';

/** Fast worker settings for tests: stalled jobs are recovered within about a second. */
export const FAST_WORKER = { lockDuration: 1_000, stalledInterval: 300, maxStalledCount: 1 } as const;

export interface BootOptions {
  redis: Partial<RedisClientModuleOptions>;
  jobs?: JobQueueModuleOptions;
  queues: RegisterQueueOptions[];
  providers?: Provider[];
  imports?: Array<Type<unknown>>;
  logger?: LoggerService | false;
}

export interface Booted {
  app: INestApplicationContext;
  jobs: JobQueueService;
}

/** An application context with RedisClientModule, JobQueueModule and the given queues and processors. */
export async function bootJobs(options: BootOptions): Promise<Booted> {
  @Module({
    imports: [
      RedisClientModule.forRoot({ ...fastRedisOptions({ commandTimeout: 2_000 }), ...options.redis }),
      JobQueueModule.forRoot({
        useEnv: false,
        drainTimeout: 2_000,
        backoff: { delay: 50 },
        worker: FAST_WORKER,
        ...options.jobs,
      }),
      JobQueueModule.registerQueue(...options.queues),
      ...(options.imports ?? []),
    ],
    providers: options.providers ?? [],
  })
  class TestJobsModule {}
  const app = await NestFactory.createApplicationContext(TestJobsModule, {
    logger: options.logger ?? (process.env.JQ_DEBUG ? undefined : false),
    abortOnError: false,
  });
  return { app, jobs: app.get(JobQueueService) };
}

/** Redis options of a standalone server or a Cluster. */
export function redisFor(
  target: { url(): string } | { seeds(): Array<{ host: string; port: number }> },
): Partial<RedisClientModuleOptions> {
  return 'url' in target ? { url: target.url() } : { cluster: { nodes: target.seeds() } };
}
