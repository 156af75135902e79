import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { ManagedRedisClient } from './managed-redis-client';
import { resolveRedisConfig, type ResolvedRedisModuleConfig } from './redis.config';
import { DEFAULT_CLIENT } from './redis.constants';
import { RedisEvents } from './redis-events';
import type { RedisClientHealth, RedisClientModuleOptions } from './redis.interfaces';
import { REDIS_MODULE_OPTIONS } from './redis.module-definition';

/**
 * Owns every named Redis client of the app. Clients start connecting when the manager is created and
 * never block start-up: an app boots with Redis down, reports `degraded`, and upgrades by itself.
 */
@Injectable()
export class RedisClientManager implements OnModuleInit, OnApplicationShutdown {
  /** State changes, breaker transitions, health, command latency, fallbacks and audit events. */
  readonly events = new RedisEvents();
  /** `<prefix>` of every key Redwing libs write (`<prefix>:<lib>:<name>`). */
  readonly keyPrefix: string;
  /**
   * Whether every HTTP request runs in a Redis budget scope (one Redis wait per request; see
   * `RedisClientModuleOptions.requestBudget`).
   */
  readonly requestBudget: boolean;
  private readonly clients = new Map<string, ManagedRedisClient>();
  private readonly logger = new Logger('RedisClientManager');
  private closed?: Promise<void>;

  constructor(@Inject(REDIS_MODULE_OPTIONS) options: RedisClientModuleOptions) {
    const config: ResolvedRedisModuleConfig = resolveRedisConfig(options ?? {});
    this.keyPrefix = config.keyPrefix;
    this.requestBudget = config.requestBudget;
    for (const clientConfig of config.clients) {
      const client = new ManagedRedisClient(clientConfig, this.events);
      this.clients.set(client.name, client);
    }
  }

  /** Start every client connecting in the background; never waits for Redis. */
  onModuleInit(): void {
    for (const client of this.clients.values()) client.start();
  }

  /**
   * A named client (`default` unless named).
   * @throws Error naming the configured clients when `name` is unknown
   */
  get(name: string = DEFAULT_CLIENT): ManagedRedisClient {
    const client = this.clients.get(name);
    if (!client) {
      throw new Error(
        `Unknown Redis client "${name}". Configured clients: ${[...this.clients.keys()].join(', ')}. ` +
          `Add it under RedisClientModule.forRoot({ clients: { ${name}: { url } } }).`,
      );
    }
    return client;
  }

  has(name: string): boolean {
    return this.clients.has(name);
  }

  all(): ManagedRedisClient[] {
    return [...this.clients.values()];
  }

  /** Health of every client, keyed by name. URLs are redacted. */
  getHealth(): Record<string, RedisClientHealth> {
    const out: Record<string, RedisClientHealth> = {};
    for (const [name, client] of this.clients) out[name] = client.getHealth();
    return out;
  }

  /** Build a key in the Redwing namespace: `<prefix>:<lib>:<parts…>`. */
  key(lib: string, ...parts: string[]): string {
    return [this.keyPrefix, lib, ...parts].join(':');
  }

  async onApplicationShutdown(): Promise<void> {
    await this.close();
  }

  /** Close every client and remove every event listener. Safe to call twice. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      await Promise.all(this.all().map((c) => c.close()));
      this.events.removeAllListeners();
      this.logger.log(`closed ${this.clients.size} Redis client(s)`);
    })();
    return this.closed;
  }
}
