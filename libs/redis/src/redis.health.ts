import { Injectable } from '@nestjs/common';
import { RedisClientManager } from './redis-client.manager';
import type { RedisClientHealth } from './redis.interfaces';

/** The result shape `@nestjs/terminus` expects from a health indicator. */
export type RedisHealthIndicatorResult = Record<
  string,
  { status: 'up' | 'degraded' | 'down'; clients: Record<string, Omit<RedisClientHealth, 'name'>> }
>;

/**
 * `@nestjs/terminus` health indicator for every Redis client (terminus is optional: this class only
 * returns terminus-shaped results and never imports it).
 *
 * `up` when every client is up; `degraded` when any client is degraded (the app still serves from its
 * fallbacks, so HTTP stays 200); `down` only with `{ failWhenDegraded: true }`.
 * @example
 * @Get('health') @HealthCheck()
 * check() { return this.health.check([() => this.redis.isHealthy('redis')]); }
 */
@Injectable()
export class RedisHealthIndicator {
  constructor(private readonly manager: RedisClientManager) {}

  isHealthy<K extends string = 'redis'>(
    key: K = 'redis' as K,
    options: { failWhenDegraded?: boolean; clients?: string[] } = {},
  ): RedisHealthIndicatorResult {
    const all = this.manager.getHealth();
    const names = options.clients ?? Object.keys(all);
    const clients: Record<string, Omit<RedisClientHealth, 'name'>> = {};
    let degraded = false;
    for (const name of names) {
      const { name: _name, ...rest } = all[name] ?? this.manager.get(name).getHealth();
      clients[name] = rest;
      if (rest.status !== 'up') degraded = true;
    }
    const status = !degraded ? 'up' : options.failWhenDegraded ? 'down' : 'degraded';
    return { [key]: { status, clients } };
  }
}
