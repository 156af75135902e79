// gateway: the real gateway — the `npm start` build (dist/, `npm run build`), in its own process, with its
// global guard, its MetricsModule (metrics on, tracing and Sentry off), sessions and every other feature, on a
// bench redis-server — serving `GET /boards/1..50` warm (L1 hits of the `kanban` cache profile), against
//   bare            a bare Nest 12 + Fastify route returning the same JSON from a Map      Goal: ≥ 0.8×
//   cache-manager   the same route behind @nestjs/cache-manager + a keyv Redis store       Goal: ≥ 1.6×
// (both peers in one child process, bench/gateway/peers-server.ts; same adapter, same bodies byte for byte,
// same Node flags as the gateway: scripts/gateway-node-flags.js).
// 10 autocannon connections from 127.0.0.1, the path cycling over the 50 boards, after a warm-up of at least
// 5 s per side (V8 compiles the gateway for seconds; its CPU/request settles after that). Every round measures the
// three sides back to back, the order rotating each round; the ratio of a round is gateway req/s ÷ peer
// req/s in that round, the figure the median over rounds. Reported: req/s, p50/p99 latency and the CPU µs
// per request of each serving process (the gateway's from /proc, the peers' from process.cpuUsage()).
//
// The gateway's environment (bench/gateway/gateway-process.ts): REDIS_URL = the bench Redis,
// HTTP_ADAPTER=fastify, RATE_LIMIT_BOARDS=1000000 (the `GET /boards` list limit, raised as a user would for a
// load test from one address; `GET /boards/:id` has no limit, but the global guard runs on it), LOG_LEVEL=warn,
// no OTEL_* / SENTRY_* variables; everything else at its default (CACHE_BOARDS_TTL 30 s with 30 s
// stale-while-revalidate: a board is refreshed in the background every 30 s).
//
//   npm run bench -- gateway --rounds 5 --ms 10000 --warmup 2000     (BENCH.md: 2 s warm-up, 10 s measured)
//   npm run bench -- gateway --rounds 3 --ms 3000                    (quicker)
//   BENCH_SERVER_NODE_ARGS="--cpu-prof --cpu-prof-dir=$PWD/.tmp/prof" npm run bench -- gateway
//                    (CPU profiles of the gateway and of the peers' process, written when they stop)
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import {
  benchMain,
  meetsGoal,
  median,
  printJsonLine,
  round2,
  selectedVariants,
  spread,
  withRedis,
  type ComparisonSummary,
} from './lib';
import { autocannon, ServerProcess } from './lib/http';
import { ensureGatewayBuild, GATEWAY_NODE_FLAGS, startGateway } from './gateway/gateway-process';

const SCENARIO = 'gateway';
const BOARDS = 50;
const CONNECTIONS = 10;
/** Shortest warm-up per side, whatever --warmup says. */
const MIN_WARMUP_MS = 5_000;
const PEERS = [
  { name: 'bare', app: 'bare', label: 'bare Nest route (no cache, no guard, no metrics)', goal: 0.8 },
  { name: 'cache-manager', app: 'cacheManager', label: '@nestjs/cache-manager + @keyv/redis', goal: 1.6 },
] as const;

/** A server under load: where to send requests and how to read its CPU time (µs). */
interface Target {
  name: string;
  label: string;
  url: string;
  cpu: () => Promise<number>;
}

interface Run {
  requests: number;
  reqPerSec: number;
  cpuUsPerReq: number;
  latencyMeanMs: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
}

async function hammer(target: Target, ms: number, when: string): Promise<Run> {
  let i = 0;
  const cpu0 = await target.cpu();
  const result = await autocannon({
    url: target.url,
    connections: CONNECTIONS,
    duration: ms / 1_000,
    pipelining: 1,
    requests: [{ method: 'GET', setupRequest: (req) => ({ ...req, path: `/boards/${(i++ % BOARDS) + 1}` }) }],
  });
  const cpuUs = (await target.cpu()) - cpu0;
  const requests = result.requests.total;
  if (result.errors > 0 || result.timeouts > 0 || result.non2xx > 0 || requests === 0) {
    throw new Error(
      `${target.name} during ${when}: ${result.errors} errors, ${result.timeouts} timeouts, ` +
        `${result.non2xx} non-2xx of ${requests} requests`,
    );
  }
  return {
    requests,
    reqPerSec: requests / (ms / 1_000),
    cpuUsPerReq: cpuUs / requests,
    latencyMeanMs: result.latency.average,
    latencyP50Ms: result.latency.p50,
    latencyP99Ms: result.latency.p99,
  };
}

/** Fetches `url` and returns its body, checking the status (and the X-Cache header when `xCache` is given). */
async function get(url: string, xCache?: string): Promise<string> {
  const res = await fetch(url);
  const body = await res.text();
  if (!res.ok) throw new Error(`GET ${url}: ${res.status} ${body.slice(0, 200)}`);
  if (xCache !== undefined && res.headers.get('x-cache') !== xCache) {
    throw new Error(`GET ${url}: X-Cache ${res.headers.get('x-cache')}, expected ${xCache}`);
  }
  return body;
}

const ids = Array.from({ length: BOARDS }, (_, i) => i + 1);

benchMain(SCENARIO, (settings) =>
  withRedis(async (redis) => {
    ensureGatewayBuild((m) => process.stdout.write(`${SCENARIO}: ${m}\n`));
    const peers = selectedVariants(settings, PEERS);
    const gateway = await startGateway(redis.url);
    const dir = mkdtempSync(path.join(tmpdir(), 'redwing-bench-gateway-'));
    let server: ServerProcess | undefined;
    try {
      // Warm the gateway: the first read of a board waits for the simulated upstream (UPSTREAM_DELAY_MS).
      await Promise.all(ids.map((id) => get(`${gateway.url}/boards/${id}`)));
      const bodies: Record<string, string> = {};
      for (const id of ids) bodies[id] = await get(`${gateway.url}/boards/${id}`, 'HIT');
      const file = path.join(dir, 'boards.json');
      writeFileSync(file, JSON.stringify(Object.fromEntries(ids.map((id) => [id, JSON.parse(bodies[id])]))));
      server = await ServerProcess.start(
        path.join(__dirname, 'gateway', 'peers-server.ts'),
        { BENCH_REDIS_URL: redis.url, BENCH_GATEWAY_BOARDS: file },
        { execArgv: [...GATEWAY_NODE_FLAGS] },
      );
      const peersServer = server;
      // Same bodies everywhere; the cache-manager side holds every board before anything is measured.
      for (const peer of PEERS) {
        for (const id of ids) {
          await get(peersServer.url(peer.app, `/boards/${id}`));
          const body = await get(peersServer.url(peer.app, `/boards/${id}`));
          if (body !== bodies[id]) throw new Error(`${peer.name} /boards/${id}: not the gateway's body`);
        }
      }
      const targets: Target[] = [
        {
          name: 'gateway',
          label: 'the gateway (npm start build)',
          url: gateway.url,
          cpu: () => gateway.cpu(),
        },
        ...peers.map((p) => ({
          name: p.name,
          label: p.label,
          url: peersServer.url(p.app),
          cpu: () => peersServer.cpu(),
        })),
      ];
      // At least 5 s each: the gateway is a large app, and V8 keeps compiling it (on its own threads, which
      // count in the process's CPU) for seconds; a 1 s warm-up left its first rounds at 2–4× its CPU/request.
      const warmupMs = Math.max(settings.warmupMs, MIN_WARMUP_MS);
      for (const t of targets) await hammer(t, warmupMs, 'warm-up');
      const runs = new Map<string, Run[]>(targets.map((t) => [t.name, []]));
      for (let round = 1; round <= settings.rounds; round++) {
        // Rotate the order each round so drift hits every side alike.
        const order = targets.map((_, i) => targets[(i + round - 1) % targets.length]);
        for (const t of order) {
          await new Promise((r) => setTimeout(r, 200));
          const run = await hammer(t, settings.ms, `round ${round}`);
          runs.get(t.name)!.push(run);
          printJsonLine({
            type: 'measurement',
            scenario: SCENARIO,
            round,
            side: t.name,
            label: t.label,
            concurrency: CONNECTIONS,
            ms: settings.ms,
            ops: run.requests,
            opsPerSec: Math.round(run.reqPerSec),
            cpuUsPerOp: round2(run.cpuUsPerReq),
            latencyMeanMs: round2(run.latencyMeanMs),
            latencyP50Ms: run.latencyP50Ms,
            latencyP99Ms: run.latencyP99Ms,
          });
        }
      }
      const ours = runs.get('gateway')!;
      const side = (t: Target) => ({
        label: t.label,
        opsPerSec: spread(runs.get(t.name)!.map((r) => r.reqPerSec)),
        cpuUsPerOp: spread(runs.get(t.name)!.map((r) => r.cpuUsPerReq)),
        errors: 0,
      });
      const summaries: ComparisonSummary[] = peers.map((p) => {
        const theirs = runs.get(p.name)!;
        const summary: ComparisonSummary = {
          type: 'summary',
          scenario: SCENARIO,
          variant: p.name,
          description: `the gateway (global guard, metrics on, tracing off), GET /boards/1..${BOARDS} warm, vs ${p.label} (Fastify, ${CONNECTIONS} connections)`,
          concurrency: CONNECTIONS,
          rounds: settings.rounds,
          ms: settings.ms,
          warmupMs: Math.max(settings.warmupMs, MIN_WARMUP_MS),
          ours: side(targets[0]),
          peer: side(targets.find((t) => t.name === p.name)!),
          ratio: spread(ours.map((r, i) => r.reqPerSec / theirs[i].reqPerSec)),
          cpuRatio: spread(ours.map((r, i) => r.cpuUsPerReq / theirs[i].cpuUsPerReq)),
          goal: p.goal,
        };
        summary.meetsGoal = meetsGoal(summary);
        printJsonLine(summary);
        return summary;
      });
      const rows = targets.map((t) => {
        const r = runs.get(t.name)!;
        const m = (f: (run: Run) => number) => median(r.map(f));
        return (
          `| ${t.name} | ${Math.round(m((x) => x.reqPerSec))} | ${m((x) => x.latencyMeanMs).toFixed(2)} | ` +
          `${m((x) => x.latencyP50Ms)} | ${m((x) => x.latencyP99Ms)} | ${m((x) => x.cpuUsPerReq).toFixed(1)} |`
        );
      });
      process.stdout.write(
        '\n' +
          [
            '| side | req/s | latency mean ms | p50 ms | p99 ms | server CPU µs/req |',
            '|---|---|---|---|---|---|',
            ...rows,
          ].join('\n') +
          '\n(medians over rounds)\n',
      );
      return summaries;
    } finally {
      await server?.stop();
      await gateway.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }),
);
