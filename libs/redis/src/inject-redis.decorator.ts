import { Inject } from '@nestjs/common';
import { DEFAULT_CLIENT, REDIS_TOKEN_PREFIX } from './redis.constants';

/** Injection token of the raw (breaker-protected) ioredis command connection of a named client. */
export function getRedisToken(name: string = DEFAULT_CLIENT): string {
  return `${REDIS_TOKEN_PREFIX}${name}`;
}

/**
 * Inject the shared command connection (ioredis `Redis` or `Cluster`) of a client.
 * @example
 * constructor(@InjectRedis() private readonly redis: Redis) {}
 * constructor(@InjectRedis('durable') private readonly durable: Redis) {}
 */
export function InjectRedis(name: string = DEFAULT_CLIENT): PropertyDecorator & ParameterDecorator {
  return Inject(getRedisToken(name));
}
