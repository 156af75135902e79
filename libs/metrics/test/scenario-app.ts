/**
 * A small Nest app for the metrics int-specs: RedisClientModule on a harness Redis, MetricsModule, a
 * global guard standing in for the rate limiter (its decision is a `withSpan` around an INCR), and
 * routes standing in for a cached read, a write with a JSON body, and failures.
 */
import {
  Body,
  Controller,
  Get,
  HttpCode,
  ImATeapotException,
  Injectable,
  InternalServerErrorException,
  Module,
  Param,
  Post,
  ServiceUnavailableException,
  type CanActivate,
  type ExecutionContext,
  type INestApplication,
} from '@nestjs/common';
import { APP_GUARD, NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import type { Redis } from 'ioredis';
import { InjectRedis, RedisClientModule } from '@redwing/redis';
import { MetricsModule, withSpan, type MetricsModuleOptions } from '../src';

export type Adapter = 'fastify' | 'express';

/** Stands in for the rate-limit guard: one INCR per request inside a `ratelimit.decision` span. */
@Injectable()
class DecisionGuard implements CanActivate {
  constructor(@InjectRedis() private readonly redis: Redis) {}

  canActivate(ctx: ExecutionContext): Promise<boolean> {
    const req = ctx.switchToHttp().getRequest<{ headers: Record<string, string | undefined> }>();
    if (ctx.getClass() !== ItemsController) return Promise.resolve(true); // not the scrape endpoint
    return withSpan('ratelimit.decision', { 'redwing.ratelimit.policy': 'test' }, async (span) => {
      await this.redis.incr('scenario:decisions');
      const deny = req.headers['x-deny'] === '1';
      span.setAttribute('redwing.ratelimit.outcome', deny ? 'denied' : 'allowed');
      return !deny;
    });
  }
}

@Controller('items')
class ItemsController {
  constructor(@InjectRedis() private readonly redis: Redis) {}

  /** A cached read: a `cache.lookup` span around a GET. */
  @Get(':id')
  get(@Param('id') id: string): Promise<{ id: string; cached: boolean }> {
    return withSpan('cache.lookup', { 'redwing.cache.profile': 'items' }, async (span) => {
      const hit = await this.redis.get(`scenario:item:${id}`);
      span.setAttribute('redwing.cache.result', hit ? 'hit' : 'miss');
      return { id, cached: hit !== null };
    });
  }

  /** A write with a JSON body (the context must survive body parsing). */
  @Post(':id')
  @HttpCode(201)
  async post(
    @Param('id') id: string,
    @Body() body: { title?: string },
  ): Promise<{ id: string; title: string }> {
    await this.redis.set(`scenario:item:${id}`, body.title ?? '');
    return { id, title: body.title ?? '' };
  }

  @Get('fail/type-error')
  typeError(): never {
    throw new TypeError('scenario: something was undefined');
  }

  @Get('fail/internal')
  internal(): never {
    throw new InternalServerErrorException('scenario: deliberate 500');
  }

  @Get('fail/teapot')
  teapot(): never {
    throw new ImATeapotException();
  }

  @Get('fail/unavailable')
  unavailable(): never {
    throw new ServiceUnavailableException('scenario: failing closed');
  }

  @Get('fail/wrongtype')
  async wrongType(): Promise<unknown> {
    await this.redis.set('scenario:string', 'x');
    return this.redis.hget('scenario:string', 'field'); // WRONGTYPE
  }
}

/** Builds the scenario app (not listening). `metrics` defaults to `{ serviceName: 'scenario' }`. */
export async function createScenarioApp(options: {
  adapter: Adapter;
  redisUrl: string;
  metrics?: Partial<MetricsModuleOptions>;
  path?: string | false;
}): Promise<INestApplication> {
  @Module({
    imports: [
      RedisClientModule.forRoot({
        url: options.redisUrl,
        useEnv: false,
        healthCheck: { interval: 200 },
        maxReconnectDelay: 200,
      }),
      MetricsModule.forRoot({
        serviceName: 'scenario',
        useEnv: false,
        ...options.metrics,
        ...(options.path === undefined ? {} : { path: options.path }),
      }),
    ],
    controllers: [ItemsController],
    providers: [{ provide: APP_GUARD, useClass: DecisionGuard }],
  })
  class ScenarioModule {}

  const adapter = options.adapter === 'express' ? new ExpressAdapter() : new FastifyAdapter();
  return NestFactory.create<INestApplication>(ScenarioModule, adapter, {
    logger: false,
    abortOnError: false,
  });
}

/** Listens on a free 127.0.0.1 port; returns the base URL. */
export async function listen(app: INestApplication): Promise<string> {
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as { port: number };
  return `http://127.0.0.1:${port}`;
}
