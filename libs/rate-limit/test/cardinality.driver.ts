// Load driver of the "cardinality" reliability test (reliability.int-spec.ts), run in its own Node process
// because jest's module sandbox roughly doubles the CPU cost of every promise-heavy call:
//   node --expose-gc --require ./bench/register.js libs/rate-limit/test/cardinality.driver.ts
// with REDWING_BENCH_LIBS=src, CARDINALITY_REDIS_URL, CARDINALITY_TOTAL, CARDINALITY_LOCAL_MAX.
// Drives TOTAL distinct client keys through RateLimitService into Redis, then the same number into the
// in-memory limiter (breaker forced open), and prints one JSON line with what it measured.
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { RateLimitModule, RateLimitService, type RateLimitLimit } from '@redwing/rate-limit';
import { RedisClientManager, RedisClientModule } from '@redwing/redis';

export const CARDINALITY_LIMITS: RateLimitLimit[] = [
  // Windows longer than the run, so INFO can count every key the run wrote.
  { name: 'card-fw', points: 5, duration: 300_000 },
  { name: 'card-sw', points: 5, duration: 300_000, algorithm: 'sliding-window' },
  // A bucket key lives until the bucket is full again (one token: 12 min here), so all are still there.
  { name: 'card-tb', points: 5, duration: 3_600_000, algorithm: 'token-bucket' },
];

async function main(): Promise<void> {
  const total = Number(process.env.CARDINALITY_TOTAL);
  const localMax = Number(process.env.CARDINALITY_LOCAL_MAX);
  @Module({
    imports: [
      RedisClientModule.forRoot({
        url: process.env.CARDINALITY_REDIS_URL,
        useEnv: false,
        commandTimeout: 5_000,
        healthCheck: { interval: 1_000 },
        redisOptions: { enableAutoPipelining: true },
      }),
      RateLimitModule.forRoot({ local: { maxEntries: localMax } }),
    ],
  })
  class DriverModule {}
  const app = await NestFactory.createApplicationContext(DriverModule, { logger: ['error'] });
  const service = app.get(RateLimitService);
  const client = app.get(RedisClientManager).get();
  if (!(await client.waitUntilReady(10_000))) throw new Error('Redis not ready');

  const drive = async (offset: number, sample: () => void) => {
    let next = 0;
    let refused = 0;
    const deadline = Date.now() + 100_000;
    const started = Date.now();
    const worker = async () => {
      while (next < total && Date.now() < deadline) {
        const i = next++;
        const d = await service.consume(`ip:${offset + i}`, { limits: CARDINALITY_LIMITS[i % 3] });
        if (!d.allowed) refused++;
        if (i % 10_000 === 0) sample();
      }
    };
    await Promise.all(Array.from({ length: 300 }, worker));
    return { done: next, refused, ms: Date.now() - started };
  };

  const redisPhase = await drive(0, () => undefined);
  const afterRedis = service.stats();

  client.breaker.forceOpen();
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  let maxEntries = 0;
  const localPhase = await drive(total, () => {
    maxEntries = Math.max(maxEntries, service.stats().local.entries);
  });
  const stats = service.stats();
  maxEntries = Math.max(maxEntries, stats.local.entries);
  gc?.();
  const heapGrowth = process.memoryUsage().heapUsed - heapBefore;
  client.breaker.release();
  await app.close();
  process.stdout.write(
    JSON.stringify({ redisPhase, localPhase, afterRedis, stats, maxEntries, heapGrowth, gc: Boolean(gc) }) +
      '\n',
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`cardinality driver failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
