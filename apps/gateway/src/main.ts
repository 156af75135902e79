import { Logger, type INestApplication } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { RedisClientManager } from '@redwing/redis';
import { createApp } from './bootstrap';
import { GatewayConfigError, type GatewayEnv } from './config/gateway-env.schema';

async function main(): Promise<void> {
  let app: INestApplication | undefined;
  try {
    app = await createApp();
    app.enableShutdownHooks();
    const config = app.get<ConfigService<GatewayEnv, true>>(ConfigService);
    await app.listen(config.get('PORT', { infer: true }), config.get('HOST', { infer: true }));
    const redis = app
      .get(RedisClientManager)
      .all()
      .map((client) => `${client.name}=${client.getHealth().url}`)
      .join(', ');
    new Logger('Gateway').log(
      `Listening on ${await app.getUrl()} (${config.get('HTTP_ADAPTER', { infer: true })}); Redis ${redis}`,
    );
  } catch (err) {
    if (err instanceof GatewayConfigError) {
      console.error(err.message);
    } else {
      console.error('Gateway failed to start:', err instanceof Error ? (err.stack ?? err.message) : err);
    }
    await app?.close().catch(() => undefined);
    process.exit(1);
  }
}

void main();
