// Server process of guard-ladder.ts: the same trivial Fastify route behind guards of increasing cost, to see
// where a rate-limited request's server CPU goes. IPC protocol as route-server.ts ('ready', 'cpu', 'gc', 'stop').
import 'reflect-metadata';
import {
  Controller,
  Get,
  Global,
  Injectable,
  Module,
  type CanActivate,
  type ExecutionContext,
  type INestApplication,
  type Type,
} from '@nestjs/common';
import { APP_GUARD, NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { MetricsService } from '@redwing/metrics';
import { RateLimit, RateLimitGuard, RateLimitModule, RateLimitService } from '@redwing/rate-limit';
import { RedisClientManager, RedisClientModule } from '@redwing/redis';
import { RateLimiterRedis } from 'rate-limiter-flexible';

const LIMIT = { name: 'ladder', points: 1_000_000_000, duration: 60_000 };

@Controller('r')
class LadderController {
  @Get()
  @RateLimit(LIMIT)
  get() {
    return { ok: true };
  }
}

@Global()
@Module({ providers: [MetricsService], exports: [MetricsService] })
class MetricsRegistryModule {}

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

function appModule(redisUrl: string, guard: Type<CanActivate> | null, headers = true): Type<unknown> {
  @Module({
    imports: [
      RedisClientModule.forRoot({
        url: redisUrl,
        useEnv: false,
        commandTimeout: 1_000,
        healthCheck: { interval: 2_000 },
      }),
      MetricsRegistryModule,
      RateLimitModule.forRoot({ limitAllRoutes: false, headers }),
    ],
    controllers: [LadderController],
    providers: guard ? [{ provide: APP_GUARD, useClass: guard }] : [],
  })
  class LadderModule {}
  return LadderModule;
}

async function main(): Promise<void> {
  const url = process.env.BENCH_REDIS_URL;
  if (!url || !process.send) throw new Error('guard-ladder-server: run me through guard-ladder.ts');
  const rungs: Record<string, Type<unknown>> = {
    'no guard': appModule(url, null),
    'sync no-op guard': appModule(url, SyncGuard),
    'async no-op guard': appModule(url, AsyncGuard),
    'one GET': appModule(url, GetGuard),
    'rate-limiter-flexible': appModule(url, FlexibleGuard),
    'RateLimitService.consume': appModule(url, ServiceGuard),
    'RateLimitGuard, no headers': appModule(url, RateLimitGuard, false),
    RateLimitGuard: appModule(url, RateLimitGuard),
  };
  const apps: INestApplication[] = [];
  const ports: Record<string, number> = {};
  for (const [name, module] of Object.entries(rungs)) {
    const app = await NestFactory.create(module, new FastifyAdapter(), { logger: ['error'] });
    await app.listen(0, '127.0.0.1');
    if (!(await app.get(RedisClientManager).get().waitUntilReady(5_000))) throw new Error('Redis not ready');
    apps.push(app);
    ports[name] = (app.getHttpServer().address() as { port: number }).port;
  }
  process.on('message', (msg: { type: string }) => {
    if (msg.type === 'cpu') process.send!({ type: 'cpu', usage: process.cpuUsage() });
    else if (msg.type === 'gc') {
      (globalThis as { gc?: () => void }).gc?.();
      process.send!({ type: 'gc' });
    } else if (msg.type === 'stop')
      void Promise.all(apps.map((a) => a.close())).finally(() => process.exit(0));
  });
  process.send({ type: 'ready', ports });
}

main().catch((err: unknown) => {
  process.stderr.write(
    `guard-ladder-server: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
