// rate-limit-service: RateLimitService.consume() (Nest app context, breaker on, metrics registry present) vs raw
// rate-limiter-flexible RateLimiterRedis.consume() on a plain ioredis client with the same connection options,
// 100 calls in flight, keys rotating over 10,000 clients, limits never reached. Goal (BENCH.md): ≥ 0.9×.
// The sliding-window and token-bucket variants compare our own Lua against the same peer (a different
// algorithm, so informational: no goal). The leased variants count in slices leased from Redis (counting:
// 'leased'; informational: the peer still pays a round trip per call): over 10,000 rotating keys each key
// sees one call per 10,000, so slices stay small; over 10 keys they grow and most calls stay in memory.
//
//   npm run bench -- rate-limit-service                         (5 rounds × 3 s per side, 1 s warm-up)
//   npm run bench -- rate-limit-service --variant fixed-window-c100
import 'reflect-metadata';
import type { INestApplicationContext } from '@nestjs/common';
import { RateLimitModule, RateLimitService, type RateLimitLimit } from '@redwing/rate-limit';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import { benchVariants, compare, printJsonLine } from './lib';
import type { BenchRedis, BenchSettings, ComparisonSummary } from './lib';
import { MetricsRegistryModule } from './lib/metrics-registry';
import { createContext } from './lib/nest-context';
import { benchRedisModule, peerRedis, readyClient } from './lib/redis-module';

const SCENARIO = 'rate-limit-service';
const CONCURRENCY = 100;
const CLIENTS = 10_000;
/** Never reached, so every call is an admitted consume on both sides. */
const POINTS = 1_000_000_000;
const DURATION = 60_000;

interface Variant {
  name: string;
  description: string;
  limit: RateLimitLimit;
  goal?: number;
  /** The peer uses our managed connection (breaker hook) instead of a plain ioredis client. */
  peerOnManagedConnection?: boolean;
  /** Clients the keys rotate over. @default CLIENTS */
  clients?: number;
}

const VARIANTS: Variant[] = [
  {
    name: 'fixed-window-c100',
    description: 'consume, fixed window (rate-limiter-flexible on both sides), 100 in flight',
    limit: { name: 'bench-fw', points: POINTS, duration: DURATION },
    goal: 0.9,
  },
  {
    name: 'fixed-window-c100-same-connection',
    description:
      'as fixed-window-c100, the peer on our managed connection too: the cost of this lib alone, without the breaker hook (diagnostic)',
    limit: { name: 'bench-fw2', points: POINTS, duration: DURATION },
    peerOnManagedConnection: true,
  },
  {
    name: 'fixed-window-c100-leased',
    description: "as fixed-window-c100 with counting: 'leased' on our side (informational)",
    limit: { name: 'bench-fwl', points: POINTS, duration: DURATION, counting: 'leased' },
  },
  {
    name: 'fixed-window-c100-leased-10-keys',
    description: "counting: 'leased', keys rotating over 10 clients on both sides (informational)",
    limit: { name: 'bench-fwl10', points: POINTS, duration: DURATION, counting: 'leased' },
    clients: 10,
  },
  {
    name: 'sliding-window-c100',
    description: 'consume, our sliding-window Lua vs the peer fixed window (informational)',
    limit: { name: 'bench-sw', points: POINTS, duration: DURATION, algorithm: 'sliding-window' },
  },
  {
    name: 'token-bucket-c100',
    description: 'consume, our token-bucket Lua vs the peer fixed window (informational)',
    limit: { name: 'bench-tb', points: POINTS, duration: DURATION, algorithm: 'token-bucket' },
  },
];

/** Ours: the breaker on, and the metrics registry present so decisions are counted as in production. */
function ours(redis: BenchRedis): Promise<INestApplicationContext> {
  return createContext([
    benchRedisModule(redis.url, { breaker: { enabled: true } }),
    MetricsRegistryModule,
    RateLimitModule.forRoot({}),
  ]);
}

async function runVariant(
  redis: BenchRedis,
  v: Variant,
  settings: BenchSettings,
): Promise<ComparisonSummary> {
  const app = await ours(redis);
  const peerClient = peerRedis(redis);
  try {
    const client = await readyClient(app);
    await peerClient.connect();
    const service = app.get(RateLimitService);
    const peer = new RateLimiterRedis({
      storeClient: v.peerOnManagedConnection ? client.command : peerClient,
      keyPrefix: `bench-peer:${v.name}`,
      points: POINTS,
      duration: DURATION / 1_000,
    });
    const clients = v.clients ?? CLIENTS;
    const keys = Array.from({ length: clients }, (_, i) => `ip:10.0.${i >> 8}.${i & 255}`);
    let a = 0;
    let b = 0;
    const options = { limits: v.limit };

    // Both sides admit and count.
    const first = await service.consume(keys[0], options);
    const firstPeer = await peer.consume(keys[0]);
    if (!first.allowed || first.mode !== 'redis' || firstPeer.consumedPoints !== 1) {
      throw new Error(`warm check failed: ours ${JSON.stringify(first)}, peer ${JSON.stringify(firstPeer)}`);
    }

    const summary = await compare({
      scenario: SCENARIO,
      variant: v.name,
      description: v.description,
      concurrency: CONCURRENCY,
      goal: v.goal,
      settings,
      // The decisions are checked after the run (stats below), so ours pays no extra promise per call.
      ours: { label: 'RateLimitService.consume', op: () => service.consume(keys[a++ % clients], options) },
      peer: {
        label: `RateLimiterRedis.consume${v.peerOnManagedConnection ? ' (managed conn.)' : ''}`,
        op: () => peer.consume(keys[b++ % clients]),
      },
    });

    const stats = service.stats();
    printJsonLine({
      type: 'check',
      scenario: SCENARIO,
      variant: v.name,
      stats,
      breaker: client.getBreakerState(),
    });
    if (stats.mode !== 'redis' || stats.localDecisions > 0)
      throw new Error('ours fell back to memory during the run');
    if (stats.decisions.allowed < a)
      throw new Error(`ours counted ${stats.decisions.allowed} of ${a} decisions`);
    if (stats.decisions.denied + stats.decisions.unavailable > 0)
      throw new Error('ours refused calls during the run');
    return summary;
  } finally {
    peerClient.disconnect();
    await app.close();
  }
}

benchVariants(SCENARIO, VARIANTS, runVariant);
