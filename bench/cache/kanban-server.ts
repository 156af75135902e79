// Child process of the kanban benchmark: the gateway's cache feature as the gateway wires it
// (apps/gateway/src/features/cache.feature.ts: CacheModule + global CacheInterceptor + BoardsModule) on
// Nest 12 + Fastify, with the simulated upstream (UPSTREAM_DELAY_MS) and the CACHE_* settings from the env.
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { CacheService } from '@redwing/cache';
import { RedisClientModule } from '@redwing/redis';
import { BoardsService } from '../../apps/gateway/src/boards/boards.service';
import { gatewayEnvSchema } from '../../apps/gateway/src/config/gateway-env.schema';
import { cacheFeature } from '../../apps/gateway/src/features/cache.feature';
import { listen, ready, serve, serverMain } from '../lib/server';

serverMain('kanban-server', async () => {
  // Validated and converted (CACHE_BOARDS_TTL=10000 → 10000) by the gateway's own schema, as app.module.ts does.
  const config = await ConfigModule.forRoot({
    isGlobal: true,
    ignoreEnvFile: true,
    validationSchema: gatewayEnvSchema,
    validationOptions: { libraryOptions: { abortEarly: false, allowUnknown: true } },
  });
  @Module({
    imports: [
      config,
      RedisClientModule.forRoot({ url: process.env.BENCH_REDIS_URL!, useEnv: false, commandTimeout: 1_000 }),
      ...cacheFeature,
    ],
  })
  class KanbanModule {}
  const app = await NestFactory.create(KanbanModule, new FastifyAdapter(), { logger: ['error', 'warn'] });
  const port = await listen(app);
  const cache = app.get(CacheService);
  const boards = app.get(BoardsService);
  serve([app], {
    stats: async () => ({
      kanban: (await cache.stats({ redis: false })).profiles.kanban,
      upstream: { ...boards.calls },
    }),
    clear: () => cache.clear({ profile: 'kanban' }),
  });
  ready({ kanban: port });
});
