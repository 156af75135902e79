// redis-client: GET of a 64-byte value, 100 in flight, through RedisClientManager.get().command (circuit
// breaker on, a `command` listener attached as the metrics module would) vs raw ioredis with the same
// connection options, in the same process, alternating. Variant 2 turns on ioredis auto-pipelining on
// both sides. Goal (BENCH.md): ours ≥ 0.95× the peer's ops/s.
//
//   npm run bench -- redis-client                       (5 rounds × 3 s per side, 1 s warm-up)
//   npm run bench -- redis-client --rounds 3 --ms 1000  (quicker)
//   npm run bench -- redis-client --variant autopipeline
import 'reflect-metadata';
import type { INestApplicationContext } from '@nestjs/common';
import { RedisClientManager, type RedisEventMap } from '@redwing/redis';
import { benchVariants, compare, printJsonLine } from './lib';
import type { BenchRedis, BenchSettings, ComparisonSummary } from './lib';
import { createContext } from './lib/nest-context';
import { benchRedisModule, PEER_REDIS_OPTIONS, peerRedis, readyClient } from './lib/redis-module';

const SCENARIO = 'redis-client';
const KEY = 'bench:redis-client:v64';
const VALUE = 'v'.repeat(64);
const CONCURRENCY = 100;
const GOAL = 0.95;

/** What a metrics listener typically does per command: count, and bucket the duration. */
class FakeMetrics {
  static readonly BOUNDS_MS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1_000];
  readonly buckets = new Uint32Array(FakeMetrics.BOUNDS_MS.length + 1);
  count = 0;
  sumMs = 0;
  readonly byOutcome: Record<string, number> = {};

  observe = (e: RedisEventMap['command']): void => {
    this.count++;
    this.sumMs += e.durationMs;
    this.byOutcome[e.outcome] = (this.byOutcome[e.outcome] ?? 0) + 1;
    const bounds = FakeMetrics.BOUNDS_MS;
    let i = 0;
    while (i < bounds.length && e.durationMs > bounds[i]) i++;
    this.buckets[i]++;
  };
}

interface Variant {
  name: string;
  description: string;
  autoPipelining: boolean;
  /** Attach the metrics-like `command` listener on our side. @default true */
  listener?: boolean;
  /** Diagnostic variants run only when named with --variant. */
  diagnostic?: boolean;
}

const VARIANTS: Variant[] = [
  { name: 'get-c100', description: 'GET 64 B, 100 in flight', autoPipelining: false },
  {
    name: 'get-c100-autopipeline',
    description: 'GET 64 B, 100 in flight, enableAutoPipelining on both sides',
    autoPipelining: true,
  },
  {
    name: 'get-c100-no-listener',
    description: 'GET 64 B, 100 in flight, no command listener (diagnostic: cost of the hook alone)',
    autoPipelining: false,
    listener: false,
    diagnostic: true,
  },
];

function ours(redis: BenchRedis, autoPipelining: boolean): Promise<INestApplicationContext> {
  return createContext([
    benchRedisModule(redis.url, {
      breaker: { enabled: true },
      redisOptions: autoPipelining ? { enableAutoPipelining: true } : {},
    }),
  ]);
}

async function runVariant(
  redis: BenchRedis,
  v: Variant,
  settings: BenchSettings,
): Promise<ComparisonSummary> {
  const app = await ours(redis, v.autoPipelining);
  const peer = peerRedis(redis, { enableAutoPipelining: v.autoPipelining });
  try {
    const manager = app.get(RedisClientManager);
    const client = await readyClient(app);
    await peer.connect();

    // Same options on both sides, or the comparison is void.
    const mine = client.config.redisOptions as Record<string, unknown>;
    const theirs = peer.options as unknown as Record<string, unknown>;
    for (const key of [
      ...Object.keys(PEER_REDIS_OPTIONS),
      'enableAutoPipelining',
      'enableReadyCheck',
    ] as const) {
      if ((mine[key] ?? false) !== (theirs[key] ?? false)) {
        throw new Error(`option ${key} differs: ours ${String(mine[key])}, peer ${String(theirs[key])}`);
      }
    }

    const metrics = new FakeMetrics();
    const off = v.listener === false ? () => undefined : manager.events.on('command', metrics.observe);
    const command = client.command;

    await peer.set(KEY, VALUE);
    for (const [side, got] of [
      ['ours', await command.get(KEY)],
      ['peer', await peer.get(KEY)],
    ] as const) {
      if (got !== VALUE)
        throw new Error(`${side}: GET returned ${JSON.stringify(got)}, not the 64-byte value`);
    }

    const summary = await compare({
      scenario: SCENARIO,
      variant: v.name,
      description: v.description,
      concurrency: CONCURRENCY,
      goal: GOAL,
      settings,
      ours: { label: 'RedisClientManager', op: () => command.get(KEY) },
      peer: { label: 'ioredis', op: () => peer.get(KEY) },
    });
    off();

    // The listener really ran for every command, and nothing tripped the breaker.
    const stats = client.stats();
    printJsonLine({
      type: 'check',
      scenario: SCENARIO,
      variant: v.name,
      listenerCalls: metrics.count,
      outcomes: metrics.byOutcome,
      meanMs: metrics.count ? +(metrics.sumMs / metrics.count).toFixed(3) : null,
      counters: stats.counters,
      breaker: client.getBreakerState(),
    });
    if (client.getBreakerState() !== 'closed') throw new Error(`breaker is ${client.getBreakerState()}`);
    if (v.listener !== false && metrics.count < stats.counters.commands - 10) {
      throw new Error(`command listener saw ${metrics.count} of ${stats.counters.commands} commands`);
    }
    return summary;
  } finally {
    peer.disconnect();
    await app.close();
  }
}

benchVariants(SCENARIO, VARIANTS, runVariant);
