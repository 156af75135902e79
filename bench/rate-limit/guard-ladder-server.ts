// Server process of guard-ladder.ts: the same trivial Fastify route behind guards of increasing cost, to see
// where a rate-limited request's server CPU goes. Talks to the parent over IPC through bench/lib/server.ts.
import 'reflect-metadata';
import {
  Controller,
  Get,
  Injectable,
  Module,
  type CanActivate,
  type ExecutionContext,
  type INestApplication,
  type Type,
} from '@nestjs/common';
import { APP_GUARD, NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { RateLimit, RateLimitGuard, RateLimitModule, RateLimitService } from '@redwing/rate-limit';
import { RedisClientManager } from '@redwing/redis';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import { MetricsRegistryModule } from '../lib/metrics-registry';
import { benchRedisModule, readyClient } from '../lib/redis-module';
import { listen, ready, serve, serverMain } from '../lib/server';

const LIMIT = { name: 'ladder', points: 1_000_000_000, duration: 60_000 };

@Controller('r')
class LadderController {
  @Get()
  @RateLimit(LIMIT)
  get() {
    return { ok: true };
  }
}

@Controller('r')
class LeasedLadderController {
  @Get()
  @RateLimit({ ...LIMIT, name: 'ladder-leased', counting: 'leased' })
  get() {
    return { ok: true };
  }
}

@Controller('r')
class BareController {
  @Get()
  get() {
    return { ok: true };
  }
}

/** The same route in an app without Redis, metrics or the rate-limit module (the route bench's peer). */
@Module({ controllers: [BareController] })
class BareModule {}

@Injectable()
class SyncGuard implements CanActivate {
  canActivate() {
    return true;
  }
}

@Injectable()
class AsyncGuard implements CanActivate {
  canActivate() {
    return Promise.resolve(true);
  }
}

/** One GET through the managed (breaker-protected) connection. */
@Injectable()
class GetGuard implements CanActivate {
  constructor(private readonly manager: RedisClientManager) {}
  canActivate() {
    return this.manager
      .get()
      .command.get('ladder')
      .then(() => true);
  }
}

/** rate-limiter-flexible called directly, on the managed connection. */
@Injectable()
class FlexibleGuard implements CanActivate {
  private readonly limiter: RateLimiterRedis;
  constructor(manager: RedisClientManager) {
    this.limiter = new RateLimiterRedis({
      storeClient: manager.get().command,
      keyPrefix: 'ladder',
      points: LIMIT.points,
      duration: LIMIT.duration / 1_000,
    });
  }
  canActivate(context: ExecutionContext) {
    const req = context.switchToHttp().getRequest<{ raw: { socket: { remoteAddress: string } } }>();
    return this.limiter.consume(req.raw.socket.remoteAddress).then(() => true);
  }
}

/** RateLimitService.consume, without the guard's key resolution and headers. */
@Injectable()
class ServiceGuard implements CanActivate {
  constructor(private readonly rateLimit: RateLimitService) {}
  canActivate() {
    return this.rateLimit.consume('ip:127.0.0.1', { limits: LIMIT }).then((d) => d.allowed);
  }
}

function appModule(
  redisUrl: string,
  guard: Type<CanActivate> | null,
  headers = true,
  controller: Type<unknown> = LadderController,
): Type<unknown> {
  @Module({
    imports: [
      benchRedisModule(redisUrl),
      MetricsRegistryModule,
      RateLimitModule.forRoot({ limitAllRoutes: false, headers }),
    ],
    controllers: [controller],
    providers: guard ? [{ provide: APP_GUARD, useClass: guard }] : [],
  })
  class LadderModule {}
  return LadderModule;
}

serverMain('guard-ladder-server', async () => {
  const url = process.env.BENCH_REDIS_URL;
  if (!url || !process.send) throw new Error('guard-ladder-server: run me through guard-ladder.ts');
  const rungs: Record<string, Type<unknown>> = {
    'bare app (no Redis, metrics, rate-limit modules)': BareModule,
    'no guard': appModule(url, null),
    'sync no-op guard': appModule(url, SyncGuard),
    'async no-op guard': appModule(url, AsyncGuard),
    'one GET': appModule(url, GetGuard),
    'rate-limiter-flexible': appModule(url, FlexibleGuard),
    'RateLimitService.consume': appModule(url, ServiceGuard),
    'RateLimitGuard, no headers': appModule(url, RateLimitGuard, false),
    RateLimitGuard: appModule(url, RateLimitGuard),
    "RateLimitGuard, counting: 'leased'": appModule(url, RateLimitGuard, true, LeasedLadderController),
  };
  const apps: INestApplication[] = [];
  const ports: Record<string, number> = {};
  for (const [name, module] of Object.entries(rungs)) {
    const app = await NestFactory.create(module, new FastifyAdapter(), { logger: ['error'] });
    const port = await listen(app);
    if (module !== BareModule) await readyClient(app);
    apps.push(app);
    ports[name] = port;
  }
  serve(apps);
  ready(ports);
});
