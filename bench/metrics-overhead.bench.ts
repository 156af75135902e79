// metrics-overhead: what @redwing/metrics costs on a cached HTTP route. Four builds of the same Nest +
// fastify app, each in its own Node process, hit by autocannon (10 connections) from this process:
//   off      no MetricsModule                                    (baseline)
//   metrics  MetricsModule: RED metrics, Redis metrics, series flushed to Redis every 5 s, tracing off
//   both     the same plus OpenTelemetry tracing (sdk-node, OTLP/HTTP JSON to a local sink, default batching),
//            every request sampled
//   both-10  the same with OTEL_TRACES_SAMPLER=parentbased_traceidratio, OTEL_TRACES_SAMPLER_ARG=0.1
// The route is GET /items/:id answered from an in-memory Map (a cache hit; @redwing/cache is not used:
// it was not ready when this was written). Variants alternate within each round; the figures are req/s,
// mean latency and the server's CPU time per request (from /proc/<pid>/stat), and the ratio to `off`.
//
//   npm run bench -- metrics-overhead                          (5 rounds × 3 s per variant, 1 s warm-up)
//   npm run bench -- metrics-overhead --rounds 5 --ms 10000    (the figures in docs/performance.md)
//   npm run bench -- metrics-overhead --variant metrics         (off and metrics only: the ≤ 5 µs/req goal)
//
// Besides the ratios it prints, per variant, the server CPU it adds per request over `off` (the median of
// the per-round differences, and their spread): the figure the "metrics ≤ 5 µs/req" goal is about. Judge
// it over ≥ 5 separate process runs (BENCH.md).
//
// The same file is the server: with METRICS_BENCH_ROLE=server it starts the variant named by
// METRICS_BENCH_VARIANT and prints `LISTENING <url>`.
import 'reflect-metadata';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import {
  Controller,
  Get,
  Module,
  NotFoundException,
  Param,
  type DynamicModule,
  type INestApplication,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { RedisClientModule } from '@redwing/redis';
import { MetricsModule } from '@redwing/metrics';
import { assertCompiled } from './lib/server';
import {
  benchMain,
  median,
  selectedVariants,
  startRedis,
  type BenchRedis,
  type BenchSettings,
  type ComparisonSummary,
} from './lib';

/** The part of autocannon's API used here (it ships no types; @types/autocannon is not installed). */
interface AutocannonRequest {
  path?: string;
  [key: string]: unknown;
}
type Autocannon = (options: {
  url: string;
  connections: number;
  duration: number;
  requests: Array<{ setupRequest: (req: AutocannonRequest) => AutocannonRequest }>;
}) => Promise<{
  requests: { total: number };
  latency: { average: number; p99: number };
  errors: number;
  non2xx: number;
}>;
const autocannon = createRequire(__filename)('autocannon') as Autocannon;

const SCENARIO = 'metrics-overhead';
const VARIANTS = ['off', 'metrics', 'both', 'both-10'] as const;
type Variant = (typeof VARIANTS)[number];
const CONNECTIONS = 10;
const ITEMS = 1_000;
const CLK_TCK = 100; // USER_HZ on Linux

// ------------------------------------------------------------------------------------------ server side

@Controller('items')
class ItemsController {
  private readonly cache = new Map<string, { id: string; title: string; cards: number[] }>();

  constructor() {
    for (let i = 0; i < ITEMS; i++)
      this.cache.set(String(i), { id: String(i), title: `board ${i}`, cards: [1, 2, 3] });
  }

  /** A cache hit: the value comes from memory. */
  @Get(':id')
  get(@Param('id') id: string): { id: string; title: string; cards: number[] } {
    const hit = this.cache.get(id);
    if (!hit) throw new NotFoundException();
    return hit;
  }
}

async function serve(variant: Variant, redisUrl: string): Promise<void> {
  const imports: DynamicModule[] = [
    RedisClientModule.forRoot({ url: redisUrl, useEnv: false, healthCheck: { interval: 2_000 } }),
  ];
  if (variant !== 'off') {
    imports.push(
      MetricsModule.forRoot({
        serviceName: 'bench',
        useEnv: false,
        tracing: variant.startsWith('both') ? { enabled: true } : false,
        sentry: false,
      }),
    );
  }
  @Module({ imports, controllers: [ItemsController] })
  class BenchAppModule {}
  const app = await NestFactory.create<INestApplication>(BenchAppModule, new FastifyAdapter(), {
    logger: ['error', 'warn'],
  });
  await app.listen(0, '127.0.0.1');
  assertCompiled(`metrics-overhead server (${variant})`);
  const { port } = app.getHttpServer().address() as { port: number };
  process.once('SIGTERM', () => void app.close().then(() => process.exit(0)));
  process.stdout.write(`LISTENING http://127.0.0.1:${port}\n`);
}

// ------------------------------------------------------------------------------------------- bench side

interface ServerProcess {
  variant: Variant;
  url: string;
  child: ChildProcess;
}

/** user + system CPU time of a process, in µs (Linux /proc). */
function cpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1_000_000) / CLK_TCK;
}

async function startServer(variant: Variant, redis: BenchRedis, otlp: string): Promise<ServerProcess> {
  // Node flags for the servers only (e.g. `--cpu-prof --cpu-prof-dir=…`), as bench/lib/http.ts takes them.
  const extra = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const args = ['--require', join(__dirname, 'register.js'), ...extra, __filename];
  const child = spawn(process.execPath, args, {
    env: {
      ...process.env,
      METRICS_BENCH_ROLE: 'server',
      METRICS_BENCH_VARIANT: variant,
      METRICS_BENCH_REDIS: redis.url,
      OTEL_EXPORTER_OTLP_ENDPOINT: otlp,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      ...(variant === 'both-10'
        ? { OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.1' }
        : { OTEL_TRACES_SAMPLER: undefined, OTEL_TRACES_SAMPLER_ARG: undefined }),
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${variant} server did not start within 30 s`)), 30_000);
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /LISTENING (\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.once('exit', (code) => reject(new Error(`${variant} server exited with ${code}`)));
  });
  return { variant, url, child };
}

function stopServer(s: ServerProcess): Promise<void> {
  return new Promise((resolve) => {
    if (s.child.exitCode !== null) return resolve();
    const timer = setTimeout(() => s.child.kill('SIGKILL'), 5_000);
    s.child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    s.child.kill('SIGTERM');
  });
}

/** A sink for the `both` variant's OTLP export: drains, counts spans, answers 200. */
async function startSink(): Promise<{ server: Server; url: string; spans: () => number }> {
  let spans = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      spans += body.split('"spanId"').length - 1;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    server,
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    spans: () => spans,
  };
}

interface Measurement {
  variant: Variant;
  round: number;
  reqPerSec: number;
  latencyMeanMs: number;
  latencyP99Ms: number;
  cpuUsPerReq: number;
  requests: number;
}

async function load(s: ServerProcess, ms: number): Promise<Omit<Measurement, 'variant' | 'round'>> {
  const pid = s.child.pid!;
  const cpu0 = cpuMicros(pid);
  let i = 0;
  const result = await autocannon({
    url: s.url,
    connections: CONNECTIONS,
    duration: ms / 1_000,
    requests: [{ setupRequest: (req) => ({ ...req, path: `/items/${i++ % ITEMS}` }) }],
  });
  const cpu = cpuMicros(pid) - cpu0;
  const total = result.requests.total;
  if (result.errors > 0 || result.non2xx > 0 || total === 0) {
    throw new Error(`${s.variant}: ${result.errors} errors, ${result.non2xx} non-2xx, ${total} requests`);
  }
  return {
    reqPerSec: (total * 1_000) / ms,
    latencyMeanMs: result.latency.average,
    latencyP99Ms: result.latency.p99,
    cpuUsPerReq: cpu / total,
    requests: total,
  };
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function run(settings: BenchSettings): Promise<ComparisonSummary[]> {
  const redis = await startRedis();
  const sink = await startSink();
  const servers: ServerProcess[] = [];
  // `off` is the baseline of every ratio: it always runs.
  const variants: Variant[] = [
    'off',
    ...selectedVariants(
      settings,
      VARIANTS.filter((v) => v !== 'off').map((name) => ({ name })),
    ).map((v) => v.name),
  ];
  try {
    for (const v of variants) servers.push(await startServer(v, redis, sink.url));
    if (settings.warmupMs > 0) for (const s of servers) await load(s, settings.warmupMs);
    const results: Measurement[] = [];
    for (let round = 1; round <= settings.rounds; round++) {
      // Rotate the order each round so drift hits every variant alike.
      const order = servers.map((_, i) => servers[(i + round - 1) % servers.length]);
      for (const s of order) {
        await pause(200);
        const m = { variant: s.variant, round, ...(await load(s, settings.ms)) };
        results.push(m);
        process.stdout.write(
          JSON.stringify({
            type: 'measurement',
            scenario: SCENARIO,
            ...m,
            reqPerSec: Math.round(m.reqPerSec),
            cpuUsPerReq: Math.round(m.cpuUsPerReq * 10) / 10,
          }) + '\n',
        );
      }
    }
    const traced = variants.some((v) => v.startsWith('both'));
    if (traced && sink.spans() === 0) {
      throw new Error('the tracing variant exported no spans: the measurement is void');
    }
    process.stdout.write(
      JSON.stringify({ type: 'check', scenario: SCENARIO, spansExported: sink.spans() }) + '\n',
    );

    const of = (v: Variant) => results.filter((r) => r.variant === v);
    const spread = (xs: number[]) => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs) });
    const side = (v: Variant) => ({
      label: v,
      opsPerSec: spread(of(v).map((r) => r.reqPerSec)),
      cpuUsPerOp: spread(of(v).map((r) => r.cpuUsPerReq)),
      errors: 0,
    });
    const descriptions: Record<Exclude<Variant, 'off'>, string> = {
      metrics: 'cached route, metrics on, tracing off, vs off',
      both: 'cached route, metrics and tracing on (every request sampled), vs off',
      'both-10': 'cached route, metrics and tracing on, 10 % of traces sampled, vs off',
    };
    const measured = variants.filter((v): v is Exclude<Variant, 'off'> => v !== 'off');
    const summaries: ComparisonSummary[] = measured.map((v) => {
      const ratios = of(v).map((r) => r.reqPerSec / of('off').find((o) => o.round === r.round)!.reqPerSec);
      const cpuRatios = of(v).map(
        (r) => r.cpuUsPerReq / of('off').find((o) => o.round === r.round)!.cpuUsPerReq,
      );
      const summary: ComparisonSummary = {
        type: 'summary',
        scenario: SCENARIO,
        variant: v,
        description: descriptions[v],
        concurrency: CONNECTIONS,
        rounds: settings.rounds,
        ms: settings.ms,
        warmupMs: settings.warmupMs,
        ours: side(v),
        peer: side('off'),
        ratio: spread(ratios),
        cpuRatio: spread(cpuRatios),
      };
      process.stdout.write(JSON.stringify(summary) + '\n');
      return summary;
    });
    const overhead = measured.map((v) => {
      const diffs = of(v).map((r) => r.cpuUsPerReq - of('off').find((o) => o.round === r.round)!.cpuUsPerReq);
      const added = spread(diffs.map((d) => Math.round(d * 100) / 100));
      process.stdout.write(
        JSON.stringify({ type: 'overhead', scenario: SCENARIO, variant: v, addedCpuUsPerReq: added }) + '\n',
      );
      return `${v}: +${added.median.toFixed(2)} µs/req (rounds ${added.min.toFixed(2)}…${added.max.toFixed(2)})`;
    });
    process.stdout.write(
      `\nserver CPU added over off (median of per-round differences): ${overhead.join('; ')}\n`,
    );
    const lat = variants.map(
      (v) =>
        `${v}: mean ${median(of(v).map((r) => r.latencyMeanMs)).toFixed(2)} ms, ` +
        `p99 ${median(of(v).map((r) => r.latencyP99Ms)).toFixed(1)} ms`,
    );
    process.stdout.write(`\nlatency (median over rounds): ${lat.join('; ')}\n`);
    return summaries;
  } finally {
    await Promise.all(servers.map(stopServer));
    await new Promise<void>((r) => sink.server.close(() => r()));
    await redis.stop();
  }
}

if (process.env.METRICS_BENCH_ROLE === 'server') {
  serve(process.env.METRICS_BENCH_VARIANT as Variant, process.env.METRICS_BENCH_REDIS!).catch((err) => {
    process.stderr.write(`metrics-overhead server: ${(err as Error).stack}\n`);
    process.exit(1);
  });
} else {
  benchMain(SCENARIO, run);
}
