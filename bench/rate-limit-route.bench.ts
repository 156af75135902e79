// rate-limit-route: a trivial JSON route on Nest 12 + Fastify, 10 autocannon connections from 127.0.0.1
// (one client, one key), limits never reached:
//   no-guard   ours = @RateLimit through the global RateLimitGuard (fixed window in Redis, IETF headers),
//              peer = the same route without any guard.            Goal (BENCH.md): ≥ 0.85×
//   no-guard-autopipeline  as no-guard with RedisClientModule redisOptions { enableAutoPipelining: true }
//              (informational: the configuration docs/rate-limit.md recommends for busy routes)
//   throttler  ours as in no-guard, peer = @nestjs/throttler's ThrottlerGuard, one 60 s throttler, its
//              default in-memory storage.                           Goal (BENCH.md): ≥ 1.5×
// The three apps run in a child process (bench/rate-limit/route-server.ts) so autocannon never shares their
// event loop; "CPU µs/op" is that server process's CPU per request.
//
//   npm run bench -- rate-limit-route --rounds 5 --ms 10000 --warmup 2000   (BENCH.md: 2 s warm-up, 10 s measured)
//   npm run bench -- rate-limit-route --rounds 3 --ms 3000                  (quicker)
import * as path from 'node:path';
import { benchMain, startRedis, variantSelected } from './lib';
import type { ComparisonSummary } from './lib';
import { compareHttp, ServerProcess } from './rate-limit/http-compare';

const SCENARIO = 'rate-limit-route';
const VARIANTS = ['no-guard', 'no-guard-autopipeline', 'throttler'] as const;

benchMain(SCENARIO, async (settings) => {
  const redis = await startRedis();
  const server = await ServerProcess.start(path.join(__dirname, 'rate-limit', 'route-server.ts'), {
    BENCH_REDIS_URL: redis.url,
  });
  try {
    const url = (name: string) => `http://127.0.0.1:${server.ports[name]}/r`;
    const ours = { label: '@RateLimit (RateLimitGuard, Redis)', url: url('ours') };
    // Every side answers before anything is measured.
    for (const name of ['plain', 'ours', 'oursPipelined', 'throttler']) {
      const res = await fetch(url(name));
      if (res.status !== 200) throw new Error(`${name}: GET /r answered ${res.status}`);
      if (name.startsWith('ours') && !res.headers.get('ratelimit'))
        throw new Error(`${name}: no RateLimit header`);
    }
    const summaries: ComparisonSummary[] = [];
    if (variantSelected(settings, 'no-guard', VARIANTS)) {
      summaries.push(
        await compareHttp({
          scenario: SCENARIO,
          variant: 'no-guard',
          description: '@RateLimit route vs the same route without a guard (Fastify, 10 connections)',
          ours,
          peer: { label: 'no guard', url: url('plain') },
          goal: 0.85,
          settings,
          server,
        }),
      );
    }
    if (variantSelected(settings, 'no-guard-autopipeline', VARIANTS)) {
      summaries.push(
        await compareHttp({
          scenario: SCENARIO,
          variant: 'no-guard-autopipeline',
          description:
            'as no-guard, with RedisClientModule redisOptions { enableAutoPipelining: true } (informational)',
          ours: { label: '@RateLimit, auto-pipelined connection', url: url('oursPipelined') },
          peer: { label: 'no guard', url: url('plain') },
          settings,
          server,
        }),
      );
    }
    if (variantSelected(settings, 'throttler', VARIANTS)) {
      summaries.push(
        await compareHttp({
          scenario: SCENARIO,
          variant: 'throttler',
          description: '@RateLimit route vs @nestjs/throttler (60 s window, in-memory storage)',
          ours,
          peer: { label: '@nestjs/throttler', url: url('throttler') },
          goal: 1.5,
          settings,
          server,
        }),
      );
    }
    for (const s of summaries as Array<ComparisonSummary & { latencyMs?: { ours: number; peer: number } }>) {
      if (s.latencyMs) {
        process.stdout.write(
          `${s.variant}: mean latency ours ${s.latencyMs.ours.toFixed(2)} ms, peer ${s.latencyMs.peer.toFixed(2)} ms\n`,
        );
      }
    }
    return summaries;
  } finally {
    await server.stop();
    await redis.stop();
  }
});
