// cache-l2: CacheService.get answered from Redis (a profile with L1 off) vs raw ioredis GET + JSON.parse of the
// same ~300-byte JSON value, 100 in flight, over 1,000 keys (round robin, so reads of one key rarely overlap).
// Both use the connection options RedisClientModule gives ioredis. Goal (BENCH.md): ≥ 0.9×.
//   get-c100              the peer sends one GET per read (ioredis as RedisClientModule configures it)
//   get-c100-autopipeline the peer with ioredis enableAutoPipelining (its commands of one event-loop turn in one write):
//                         ours writes its reads of one event-loop turn in one socket write, so this is the
//                         like-for-like comparison of the two batching clients (informational)
//
//   npm run bench -- cache-l2                       (5 rounds × 3 s per side, 1 s warm-up)
//   npm run bench -- cache-l2 --rounds 15 --ms 1000 (on a busy machine)
import { benchMain, compare, printJsonLine, variantSelected, type ComparisonSummary } from './lib';
import { VALUE } from './cache/common';
import { countDuring, KEYS, withFilledCache } from './cache/ops-app';

const SCENARIO = 'cache-l2';
const CONCURRENCY = 100;
const VARIANTS = ['get-c100', 'get-c100-autopipeline'] as const;

benchMain(SCENARIO, (settings) =>
  withFilledCache('l2', async ({ cache, peer, peerAutoPipelined }) => {
    const expected = JSON.stringify(VALUE);
    if (JSON.stringify(await cache.get('v:7', { profile: 'l2' })) !== expected)
      throw new Error('ours: wrong value');
    if (JSON.stringify(JSON.parse((await peer.get('peer:v:7'))!)) !== expected)
      throw new Error('peer: wrong value');
    const summaries: ComparisonSummary[] = [];
    for (const variant of VARIANTS) {
      if (!variantSelected(settings, variant, VARIANTS)) continue;
      const batched = variant === 'get-c100-autopipeline';
      const client = batched ? peerAutoPipelined : peer;
      let a = 0;
      let b = 0;
      const [summary, check] = await countDuring(cache, 'l2', ['l2Hits', 'misses', 'l1Hits'], () =>
        compare({
          scenario: SCENARIO,
          variant,
          description:
            `get of a ~300 B JSON value from Redis, ${CONCURRENCY} in flight, ${KEYS} keys` +
            (batched ? ', peer with enableAutoPipelining' : ''),
          concurrency: CONCURRENCY,
          goal: batched ? undefined : 0.9,
          settings,
          ours: {
            label: 'CacheService.get (L1 off)',
            op: () => cache.get(`v:${a++ % KEYS}`, { profile: 'l2' }),
          },
          peer: {
            label: `ioredis GET + JSON.parse${batched ? ' (auto-pipelined)' : ''}`,
            op: async () => JSON.parse((await client.get(`peer:v:${b++ % KEYS}`))!),
          },
        }),
      );
      printJsonLine({ type: 'check', scenario: SCENARIO, variant, ...check });
      if (check.misses > 0 || check.l1Hits > 0 || check.l2Hits === 0)
        throw new Error('not every read was a Redis hit');
      summaries.push(summary);
    }
    return summaries;
  }),
);
