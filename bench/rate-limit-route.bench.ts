// rate-limit-route: a trivial JSON route on Nest 12 + Fastify, 10 autocannon connections from 127.0.0.1
// (one client, one key), limits never reached:
//   no-guard   ours = @RateLimit through the global RateLimitGuard (fixed window in Redis, counting: 'leased',
//              IETF headers), peer = the same route without any guard.   Goal (BENCH.md): ≥ 0.85×
//   no-guard-exact  as no-guard with counting: 'exact' (one Redis round trip per request; informational)
//   no-guard-autopipeline  no-guard-exact with RedisClientModule redisOptions { enableAutoPipelining: true }
//              (informational: the configuration docs/rate-limit.md recommends for busy exact routes)
//   throttler  ours as in no-guard, peer = @nestjs/throttler's ThrottlerGuard, one 60 s throttler, its
//              default in-memory storage.                           Goal (BENCH.md): ≥ 1.5×
//              Run at a FIXED length whatever --rounds/--ms/--warmup say (THROTTLER_RUN below: 1 s warm-up,
//              5 rounds × 5 s per side): the throttler keeps every hit of the last 60 s in an array it
//              filters on each request, so its cost per request grows with the run and a ratio means
//              nothing without the run length beside it.
// The three apps run in a child process (bench/rate-limit/route-server.ts) so autocannon never shares their
// event loop; "CPU µs/op" is that server process's CPU per request.
//
//   npm run bench -- rate-limit-route --rounds 5 --ms 10000 --warmup 2000   (BENCH.md: 2 s warm-up, 10 s measured)
//   npm run bench -- rate-limit-route --rounds 3 --ms 3000                  (quicker)
import * as path from 'node:path';
import { benchMain, selectedVariants, type BenchSettings } from './lib';
import { withServer } from './lib/http';
import { compareHttp, SERVER_OPTIONS, type HttpSide, type HttpSummary } from './rate-limit/http-compare';

const SCENARIO = 'rate-limit-route';

interface Variant {
  name: string;
  description: string;
  /** Ours and the peer: the label and the app (see route-server.ts) of each. */
  ours: { label: string; app: string };
  peer: { label: string; app: string };
  goal?: number;
  /** Run length of this variant whatever the command line says. */
  fixed?: Pick<BenchSettings, 'rounds' | 'ms' | 'warmupMs'>;
}

/** The throttler comparison's fixed run length (see the header). */
const THROTTLER_RUN = { rounds: 5, ms: 5_000, warmupMs: 1_000 };

const OURS = { label: "@RateLimit counting: 'leased' (RateLimitGuard, Redis)", app: 'ours' };
const OURS_EXACT = { label: "@RateLimit counting: 'exact' (RateLimitGuard, Redis)", app: 'oursExact' };
const NO_GUARD = { label: 'no guard', app: 'plain' };

const VARIANTS: Variant[] = [
  {
    name: 'no-guard',
    description:
      "@RateLimit route (counting: 'leased') vs the same route without a guard (Fastify, 10 connections)",
    ours: OURS,
    peer: NO_GUARD,
    goal: 0.85,
  },
  {
    name: 'no-guard-exact',
    description: "as no-guard with counting: 'exact', one Redis round trip per request (informational)",
    ours: OURS_EXACT,
    peer: NO_GUARD,
  },
  {
    name: 'no-guard-autopipeline',
    description:
      'as no-guard-exact, with RedisClientModule redisOptions { enableAutoPipelining: true } (informational)',
    ours: { label: "@RateLimit counting: 'exact', auto-pipelined connection", app: 'oursPipelined' },
    peer: NO_GUARD,
  },
  {
    name: 'throttler',
    description:
      "@RateLimit route (counting: 'leased') vs @nestjs/throttler (60 s window, in-memory storage); " +
      `fixed run: ${THROTTLER_RUN.warmupMs} ms warm-up, ${THROTTLER_RUN.rounds} rounds × ${THROTTLER_RUN.ms} ms per side`,
    ours: OURS,
    peer: { label: '@nestjs/throttler', app: 'throttler' },
    goal: 1.5,
    fixed: THROTTLER_RUN,
  },
];

benchMain(SCENARIO, (settings) =>
  withServer(
    path.join(__dirname, 'rate-limit', 'route-server.ts'),
    async (server) => {
      const url = (app: string) => server.url(app, '/r');
      const side = ({ label, app }: Variant['ours']): HttpSide => ({ label, url: url(app) });
      // Every side answers before anything is measured.
      for (const name of ['plain', 'ours', 'oursExact', 'oursPipelined', 'throttler']) {
        const res = await fetch(url(name));
        if (res.status !== 200) throw new Error(`${name}: GET /r answered ${res.status}`);
        if (name.startsWith('ours') && !res.headers.get('ratelimit'))
          throw new Error(`${name}: no RateLimit header`);
      }
      const summaries: HttpSummary[] = [];
      for (const v of selectedVariants(settings, VARIANTS)) {
        summaries.push(
          await compareHttp({
            scenario: SCENARIO,
            variant: v.name,
            description: v.description,
            ours: side(v.ours),
            peer: side(v.peer),
            goal: v.goal,
            settings: v.fixed ? { ...settings, ...v.fixed } : settings,
            server,
          }),
        );
      }
      for (const s of summaries) {
        process.stdout.write(
          `${s.variant}: mean latency ours ${s.latencyMs.ours.toFixed(2)} ms, peer ${s.latencyMs.peer.toFixed(2)} ms\n`,
        );
      }
      return summaries;
    },
    SERVER_OPTIONS,
  ),
);
