import type { INestApplication, LoggerService, LogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { AppModule } from './app.module';
import { loadGatewayEnv, logLevelsFrom, type HttpAdapterName } from './config/gateway-env.schema';
import { LiveIoAdapter, parseOrigins } from './live/live-io.adapter';
import { LiveGateway } from './live/live.gateway';

/** Options of {@link createApp}. */
export interface CreateAppOptions {
  /** HTTP platform. @default `HTTP_ADAPTER`, else 'fastify' */
  adapter?: HttpAdapterName;
  /**
   * Variables laid over `process.env` before the app is built (`undefined` removes one). They are written to
   * `process.env` because `@nestjs/config` and `@redwing/redis` read it, so apps created one after another
   * in the same process each see the variables they were given.
   */
  env?: Record<string, string | undefined>;
  /** Nest logger. @default the levels `LOG_LEVEL` enables */
  logger?: LoggerService | LogLevel[] | false;
}

/**
 * Creates the gateway (not yet listening), shared by `main.ts` and the e2e tests. Call `listen()` on it;
 * `main.ts` also enables shutdown hooks.
 * @throws GatewayConfigError when the environment is invalid (the message names every bad variable).
 */
export async function createApp(options: CreateAppOptions = {}): Promise<INestApplication> {
  for (const [key, value] of Object.entries(options.env ?? {})) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
  const env = loadGatewayEnv(process.env);
  const adapterName = options.adapter ?? env.HTTP_ADAPTER;
  const adapter = adapterName === 'express' ? new ExpressAdapter() : new FastifyAdapter();
  const module = await AppModule.forRoot();
  const app = await NestFactory.create<INestApplication>(module, adapter, {
    logger: options.logger ?? logLevelsFrom(env.LOG_LEVEL),
    // Throw instead of process.abort(): main.ts prints the reason and exits with code 1.
    abortOnError: false,
  });
  // socket.io for the /live endpoint, on the same HTTP server, with its origin allowlist and payload limit.
  app.useWebSocketAdapter(
    new LiveIoAdapter(app, {
      allowedOrigins: parseOrigins(env.LIVE_ALLOWED_ORIGINS),
      maxPayload: env.LIVE_MAX_PAYLOAD,
      onRefused: (reason) => app.get(LiveGateway, { strict: false }).metrics.drop(reason),
    }),
  );
  return app;
}
