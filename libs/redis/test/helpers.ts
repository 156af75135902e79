import type { LoggerService } from '@nestjs/common';
import { Test, type TestingModule } from '@nestjs/testing';
import { RedisClientManager, RedisClientModule, type RedisClientModuleOptions } from '@redwing/redis';
import { fastRedisOptions } from '../../../test/harness';

export { fastRedisOptions, sleep, waitFor } from '../../../test/harness';

export async function bootRedisModule(
  options: RedisClientModuleOptions,
  beforeInit?: (manager: RedisClientManager) => void,
  logger?: LoggerService,
): Promise<{ module: TestingModule; manager: RedisClientManager }> {
  const builder = Test.createTestingModule({
    imports: [RedisClientModule.forRoot({ ...fastRedisOptions(), ...options })],
  });
  if (logger) builder.setLogger(logger);
  const module = await builder.compile();
  beforeInit?.(module.get(RedisClientManager));
  await module.init();
  return { module, manager: module.get(RedisClientManager) };
}

/** Settle a promise into its outcome and the time it took. */
export async function timed<T>(
  p: Promise<T>,
): Promise<{ ok: boolean; value?: T; error?: Error; ms: number }> {
  const started = performance.now();
  try {
    const value = await p;
    return { ok: true, value, ms: performance.now() - started };
  } catch (error) {
    return { ok: false, error: error as Error, ms: performance.now() - started };
  }
}
