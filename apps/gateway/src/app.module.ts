import { DynamicModule, Module } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { RedisClientModule, type RedisClientModuleOptions } from '@redwing/redis';
import { gatewayEnvSchema, type GatewayEnv } from './config/gateway-env.schema';
import { cacheFeature } from './features/cache.feature';
import { jobsFeature } from './features/jobs.feature';
import { liveFeature } from './features/live.feature';
import { lockFeature } from './features/lock.feature';
import { metricsFeature } from './features/metrics.feature';
import { rateLimitFeature } from './features/rate-limit.feature';
import { sessionFeature } from './features/session.feature';
import { HealthModule } from './health/health.module';

/**
 * Redis clients of the gateway: `default` from `REDIS_URL`, and `durable` when `REDIS_DURABLE_URL` is set.
 * Every other `REDIS_*` variable (timeouts, breaker, TLS, Sentinel, Cluster) is read by `@redwing/redis`.
 */
export function redisOptionsFrom(config: ConfigService<GatewayEnv, true>): RedisClientModuleOptions {
  const url = config.get('REDIS_URL', { infer: true });
  const durableUrl = config.get('REDIS_DURABLE_URL', { infer: true });
  return {
    ...(url ? { url } : {}),
    ...(durableUrl ? { clients: { durable: { url: durableUrl } } } : {}),
  };
}

/** Root module of the reference gateway. */
@Module({})
export class AppModule {
  /**
   * Builds the root module. Async because `ConfigModule.forRoot()` validates the environment before the
   * module graph exists; awaiting it here turns a bad variable into a rejected promise with a message that
   * names it, instead of an error thrown while Nest scans modules.
   */
  static async forRoot(): Promise<DynamicModule> {
    const config = await ConfigModule.forRoot({
      isGlobal: true,
      // The environment is the only source (12-factor); use `node --env-file=.env` for a file.
      ignoreEnvFile: true,
      validationSchema: gatewayEnvSchema,
      validationOptions: { libraryOptions: { abortEarly: false, allowUnknown: true } },
    });
    // Validated just above. Raw connections are providers, declared before the factory runs, so the
    // optional `durable` client must be named here for `@InjectRedis('durable')` to work.
    const clientNames = process.env.REDIS_DURABLE_URL ? ['durable'] : [];
    return {
      module: AppModule,
      imports: [
        config,
        RedisClientModule.forRootAsync({
          inject: [ConfigService],
          useFactory: redisOptionsFrom,
          clientNames,
        }),
        HealthModule,
        ...metricsFeature,
        ...cacheFeature,
        ...rateLimitFeature,
        ...sessionFeature,
        ...liveFeature,
        ...lockFeature,
        ...jobsFeature,
      ],
    };
  }
}
