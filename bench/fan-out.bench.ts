// fan-out (BENCH.md): events to 1,000 socket.io clients across 2 gateway instances on one redis-server.
// Ours: two Nest apps with @redwing/pubsub + the gateway's LiveGateway (resumable tier: each event appended to a
// Redis Stream and published once; each instance broadcasts it to its room). Peer: socket.io with
// @socket.io/redis-adapter (ephemeral pub/sub; the BENCH goal: ≥ 1.0× deliveries/s, p99 < 50 ms at 5k events/s)
// or @socket.io/redis-streams-adapter (the resumable peer; informational). Clients, servers and publisher share
// one process (2 cores), so deliveries/s is the whole pipeline's, client decoding included, for both sides.
//
// closed-loop: publish 10 events on instance B, wait until all 1,000 clients have them (≤ 2 s), repeat for
//   the round; deliveries/s and p50/p99 publish→receive.
// paced-10: 10 events/s (10,000 deliveries/s asked, below what both sides sustain here), publishes not
//   awaited on either side; p99 publish→receive at a steady load.
//
//   npm run bench -- fan-out --rounds 3 --ms 2000 --warmup 500
import 'reflect-metadata';
import { performance } from 'node:perf_hooks';
import {
  printJsonLine,
  round2,
  runComparison,
  type BenchRedis,
  type BenchSettings,
  type ComparisonSummary,
} from './lib';
import { benchVariants } from './lib';
import { FanOutClients } from './fan-out/clients';
import { ours, peer, type FanOutSide, type PeerKind } from './fan-out/servers';

const SCENARIO = 'fan-out';
const CLIENTS = 1_000;
const BATCH = 10;
const CHANNEL = 'board:1';

interface Variant {
  name: string;
  description: string;
  peer: PeerKind;
  /** Events per second; undefined = closed loop. */
  rate?: number;
  goal?: number;
}

const VARIANTS: Variant[] = [
  {
    name: 'closed-loop-redis-adapter',
    description: `batches of ${BATCH} events to ${CLIENTS} clients on 2 instances, next batch once all delivered`,
    peer: 'redis-adapter',
    goal: 1.0,
  },
  {
    name: 'closed-loop-redis-streams-adapter',
    description: `as closed-loop, peer on Redis Streams (resumable) — informational`,
    peer: 'redis-streams-adapter',
  },
  {
    name: 'paced-10-redis-adapter',
    description: `10 events/s to ${CLIENTS} clients (10k deliveries/s asked); p99 publish→receive`,
    peer: 'redis-adapter',
    rate: 10,
  },
];

interface Round {
  ms: number;
  events: number;
  deliveries: number;
  expected: number;
  p50: number;
  p99: number;
  cpuUs: number;
}

async function round(side: FanOutSide, clients: FanOutClients, ms: number, rate?: number): Promise<Round> {
  clients.reset();
  const cpu = process.cpuUsage();
  const start = performance.now();
  let events = 0;
  let n = 0;
  while (performance.now() - start < ms) {
    if (rate) {
      const due = start + (events / rate) * 1_000;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      side.publish(CHANNEL, { t: performance.now(), n: ++n }).catch(() => undefined);
      events++;
    } else {
      const batch: Array<Promise<unknown>> = [];
      for (let i = 0; i < BATCH; i++) batch.push(side.publish(CHANNEL, { t: performance.now(), n: ++n }));
      await Promise.all(batch);
      events += BATCH;
      await clients.until(events * CLIENTS, 2_000);
    }
  }
  await clients.until(events * CLIENTS, 2_000);
  const elapsed = performance.now() - start;
  const used = process.cpuUsage(cpu);
  const { p50, p99 } = clients.percentiles();
  return {
    ms: elapsed,
    events,
    deliveries: clients.received,
    expected: events * CLIENTS,
    p50,
    p99,
    cpuUs: used.user + used.system,
  };
}

async function runVariant(
  redis: BenchRedis,
  v: Variant,
  settings: BenchSettings,
): Promise<ComparisonSummary> {
  const sides = { ours: await ours(redis.url), peer: await peer(redis.url, v.peer) };
  const clients = {
    ours: await FanOutClients.connect(sides.ours.bases, CLIENTS, CHANNEL),
    peer: await FanOutClients.connect(sides.peer.bases, CLIENTS, CHANNEL),
  };
  try {
    const { summary, runs } = await runComparison<Round>({
      scenario: SCENARIO,
      variant: v.name,
      description: v.description,
      concurrency: CLIENTS,
      goal: v.goal,
      settings,
      sides: { ours: { label: sides.ours.label }, peer: { label: sides.peer.label } },
      warmUp: (side) => round(sides[side], clients[side], settings.warmupMs, v.rate),
      measure: (side) => round(sides[side], clients[side], settings.ms, v.rate),
      fields: (r) => ({
        ms: Math.round(r.ms),
        events: r.events,
        deliveries: r.deliveries,
        lost: r.expected - r.deliveries,
        deliveriesPerSec: Math.round((r.deliveries / r.ms) * 1_000),
        p50Ms: round2(r.p50),
        p99Ms: round2(r.p99),
      }),
      opsPerSec: (r) => (r.deliveries / r.ms) * 1_000,
      cpuUsPerOp: (r) => r.cpuUs / Math.max(1, r.deliveries),
      errors: (r) => r.expected - r.deliveries,
    });
    const p99 = (side: 'ours' | 'peer') => runs[side].map((r) => round2(r.p99));
    printJsonLine({
      type: 'latency',
      scenario: SCENARIO,
      variant: v.name,
      p99Ms: { ours: p99('ours'), peer: p99('peer') },
    });
    if (v.goal !== undefined) summary.meetsGoal = summary.ratio.median >= v.goal;
    printJsonLine(summary);
    return summary;
  } finally {
    clients.ours.close();
    clients.peer.close();
    await sides.ours.close();
    await sides.peer.close();
  }
}

benchVariants(SCENARIO, VARIANTS, runVariant);
