// Child process of bench/rate-limit-route.bench.ts: three Nest + Fastify apps serving the same trivial JSON
// route, so the load generator (autocannon, in the parent) never shares this event loop:
//   plain      no guard at all
//   ours       @RateLimit (fixed window per client address, in Redis) through the global RateLimitGuard,
//              IETF RateLimit headers on, metrics registry present, default RedisClientModule options
//   oursPipelined  the same with RedisClientModule redisOptions { enableAutoPipelining: true }
//   throttler  @nestjs/throttler's global ThrottlerGuard, one 60 s throttler, default in-memory storage
// Limits are never reached. Talks to the parent over IPC: 'ready' {ports}, 'cpu' -> process.cpuUsage(),
// 'gc', 'stop'.
import 'reflect-metadata';
import { Controller, Get, Global, Module, type INestApplication, type Type } from '@nestjs/common';
import { APP_GUARD, NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { ThrottlerGuard, ThrottlerModule } from '@nestjs/throttler';
import { MetricsService } from '@redwing/metrics';
import { RateLimit, RateLimitGuard, RateLimitModule } from '@redwing/rate-limit';
import { RedisClientManager, RedisClientModule } from '@redwing/redis';

const LIMIT = 1_000_000_000;
const WINDOW = 60_000;

@Controller('r')
class PlainController {
  @Get()
  get() {
    return { ok: true };
  }
}

@Controller('r')
class LimitedController {
  @Get()
  @RateLimit({ points: LIMIT, duration: WINDOW })
  get() {
    return { ok: true };
  }
}

@Global()
@Module({ providers: [MetricsService], exports: [MetricsService] })
class MetricsRegistryModule {}

@Module({ controllers: [PlainController] })
class PlainModule {}

function oursModule(redisUrl: string, autoPipelining: boolean): Type<unknown> {
  @Module({
    imports: [
      RedisClientModule.forRoot({
        url: redisUrl,
        useEnv: false,
        commandTimeout: 1_000,
        healthCheck: { interval: 2_000 },
        redisOptions: { enableAutoPipelining: autoPipelining },
      }),
      MetricsRegistryModule,
      RateLimitModule.forRoot({ limitAllRoutes: false }),
    ],
    controllers: [LimitedController],
    providers: [{ provide: APP_GUARD, useClass: RateLimitGuard }],
  })
  class OursModule {}
  return OursModule;
}

@Module({
  imports: [ThrottlerModule.forRoot([{ ttl: WINDOW, limit: LIMIT }])],
  controllers: [PlainController],
  providers: [{ provide: APP_GUARD, useClass: ThrottlerGuard }],
})
class ThrottlerAppModule {}

async function listen(module: Type<unknown>): Promise<{ app: INestApplication; port: number }> {
  const app = await NestFactory.create(module, new FastifyAdapter(), { logger: ['error', 'warn'] });
  await app.listen(0, '127.0.0.1');
  return { app, port: (app.getHttpServer().address() as { port: number }).port };
}

async function main(): Promise<void> {
  const redisUrl = process.env.BENCH_REDIS_URL;
  if (!redisUrl || !process.send) throw new Error('route-server: run me through rate-limit-route.bench.ts');
  const plain = await listen(PlainModule);
  const ours = await listen(oursModule(redisUrl, false));
  const oursPipelined = await listen(oursModule(redisUrl, true));
  const throttler = await listen(ThrottlerAppModule);
  for (const o of [ours, oursPipelined]) {
    if (!(await o.app.get(RedisClientManager).get().waitUntilReady(5_000)))
      throw new Error('Redis not ready');
  }
  const apps = [plain.app, ours.app, oursPipelined.app, throttler.app];
  process.on('message', (msg: { type: string }) => {
    if (msg.type === 'cpu') process.send!({ type: 'cpu', usage: process.cpuUsage() });
    else if (msg.type === 'gc') {
      (globalThis as { gc?: () => void }).gc?.();
      process.send!({ type: 'gc' });
    } else if (msg.type === 'stop') {
      void Promise.all(apps.map((a) => a.close())).finally(() => process.exit(0));
    }
  });
  process.send({
    type: 'ready',
    ports: {
      plain: plain.port,
      ours: ours.port,
      oursPipelined: oursPipelined.port,
      throttler: throttler.port,
    },
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`route-server: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
