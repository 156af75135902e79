import { Module, type DynamicModule, type Provider } from '@nestjs/common';
import { getRedisToken } from './inject-redis.decorator';
import { RedisClientManager } from './redis-client.manager';
import { DEFAULT_CLIENT } from './redis.constants';
import { RedisHealthIndicator } from './redis.health';
import { RequestBudgetInstaller } from './request-budget.http';
import type { RedisClientModuleOptions } from './redis.interfaces';
import {
  ConfigurableRedisModule,
  REDIS_ASYNC_OPTIONS_TYPE,
  REDIS_MODULE_OPTIONS,
  REDIS_OPTIONS_TYPE,
} from './redis.module-definition';

/** Providers for the raw connections, one per client name known when the module is declared. */
function connectionProviders(names: string[]): Provider[] {
  return names.map((name) => ({
    provide: getRedisToken(name),
    useFactory: (manager: RedisClientManager) => manager.get(name).command,
    inject: [RedisClientManager],
  }));
}

/** Add the raw-connection providers of `names` to a module definition, and export them with the options. */
function withConnections(base: DynamicModule, names: string[]): DynamicModule {
  const unique = [...new Set(names)];
  return {
    ...base,
    providers: [...(base.providers ?? []), ...connectionProviders(unique)],
    exports: [...(base.exports ?? []), REDIS_MODULE_OPTIONS, ...unique.map((n) => getRedisToken(n))],
  };
}

function clientNames(options: Partial<RedisClientModuleOptions> | undefined): string[] {
  return [DEFAULT_CLIENT, ...Object.keys(options?.clients ?? {})];
}

/**
 * The connection manager every Redwing lib builds on: named clients, connections by role, circuit
 * breaker, health monitor, fail-fast commands, and a shared event surface. Global by default.
 * @example
 * RedisClientModule.forRoot({ url: process.env.REDIS_URL })
 * RedisClientModule.forRoot({ url: CACHE_URL, clients: { durable: { url: DURABLE_URL } } })
 */
@Module({
  providers: [RedisClientManager, RedisHealthIndicator, RequestBudgetInstaller],
  exports: [RedisClientManager, RedisHealthIndicator],
})
export class RedisClientModule extends ConfigurableRedisModule {
  static override forRoot(options: typeof REDIS_OPTIONS_TYPE = {}): DynamicModule {
    return withConnections(super.forRoot(options), clientNames(options));
  }

  /**
   * Options from a factory (e.g. `ConfigService`). Named clients whose raw connection you want to
   * `@InjectRedis('name')` must be listed in `clientNames`, because providers are declared before the
   * factory runs; `RedisClientManager.get(name)` works for every client regardless.
   */
  static override forRootAsync(
    options: typeof REDIS_ASYNC_OPTIONS_TYPE & { clientNames?: string[] },
  ): DynamicModule {
    return withConnections(super.forRootAsync(options), [DEFAULT_CLIENT, ...(options.clientNames ?? [])]);
  }
}
