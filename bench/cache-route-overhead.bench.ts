// cache-route-overhead: what a cached route costs next to the same route with no cache at all. A trivial
// JSON GET on Nest 12 + Fastify, 10 autocannon connections from 127.0.0.1.
//   ours = @Cacheable through our CacheInterceptor, every request an L1 hit
//   peer = the same controller in an app without any cache module or interceptor
// Goal (BENCH.md): ≥ 0.9×. Apps in a child process (bench/cache/route-server.ts).
// Two diagnostic variants split the gap: noop-vs-none = the same route behind a global interceptor that only
// calls next.handle() (what Nest charges for any interceptor) vs none; l1-vs-noop = ours vs that no-op
// interceptor (what the cache itself adds).
//
//   npm run bench -- cache-route-overhead --rounds 5 --ms 10000 --warmup 2000   (BENCH.md: 2 s warm-up, 10 s measured)
import * as path from 'node:path';
import { benchMain, variantSelected, type ComparisonSummary } from './lib';
import { withServer } from './lib/http';
import { compareHttp, latencyTable, type HttpSide, type HttpSummary } from './cache/http';

const SCENARIO = 'cache-route-overhead';
const VARIANTS = ['l1-vs-none', 'noop-vs-none', 'l1-vs-noop'] as const;

benchMain(SCENARIO, (settings) =>
  withServer(path.join(__dirname, 'cache', 'route-server.ts'), async (server) => {
    const ours = server.url('ours', '/l1');
    const plain = server.url('plain', '/item');
    await fetch(ours);
    const hit = await fetch(ours);
    const [a, b] = [await hit.text(), await (await fetch(plain)).text()];
    if (hit.headers.get('x-cache') !== 'HIT' || a !== b)
      throw new Error('ours: not an L1 hit with the same body');
    const sides: Record<string, HttpSide> = {
      l1: { label: '@Cacheable (L1 hits)', url: ours },
      none: { label: 'no cache', url: plain },
      noop: { label: 'no cache, no-op global interceptor', url: server.url('noop', '/item') },
    };
    const summaries: HttpSummary[] = [];
    for (const variant of VARIANTS) {
      if (!variantSelected(settings, variant, VARIANTS)) continue;
      const [a, b] = variant.split('-vs-');
      summaries.push(
        await compareHttp({
          scenario: SCENARIO,
          variant,
          description: `${sides[a].label} vs ${sides[b].label} (Fastify, 10 connections)`,
          ours: sides[a],
          peer: sides[b],
          goal: variant === 'l1-vs-none' ? 0.9 : undefined,
          settings,
          server,
        }),
      );
    }
    process.stdout.write('\n' + latencyTable(summaries) + '\n');
    return summaries as ComparisonSummary[];
  }),
);
