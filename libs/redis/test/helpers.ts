import type { LoggerService } from '@nestjs/common';
import { Test, type TestingModule } from '@nestjs/testing';
import { RedisClientManager, RedisClientModule, type RedisClientModuleOptions } from '@redwing/redis';

/** Fast settings for tests: short timeouts and health checks, no env leaking in from the shell. */
export const fast: Partial<RedisClientModuleOptions> = {
  useEnv: false,
  commandTimeout: 300,
  connectTimeout: 500,
  maxReconnectDelay: 200,
  healthCheck: { interval: 200 },
};

export async function bootRedisModule(
  options: RedisClientModuleOptions,
  beforeInit?: (manager: RedisClientManager) => void,
  logger?: LoggerService,
): Promise<{ module: TestingModule; manager: RedisClientManager }> {
  const builder = Test.createTestingModule({ imports: [RedisClientModule.forRoot({ ...fast, ...options })] });
  if (logger) builder.setLogger(logger);
  const module = await builder.compile();
  beforeInit?.(module.get(RedisClientManager));
  await module.init();
  return { module, manager: module.get(RedisClientManager) };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Poll `fn` every 20 ms until it returns truthy; resolves to the elapsed ms, rejects after `timeout`. */
export async function waitFor(fn: () => unknown, timeout = 10_000, what = 'condition'): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await fn()) return Date.now() - started;
    if (Date.now() - started > timeout) throw new Error(`Timed out after ${timeout} ms waiting for ${what}`);
    await sleep(20);
  }
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
