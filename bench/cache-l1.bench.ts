// cache-l1: CacheService.get answered from L1 (in process) vs raw ioredis GET of the same value, 100 in
// flight, over 1,000 keys. Goal (BENCH.md): ≥ 20×.
//
//   npm run bench -- cache-l1
import { benchMain, compare, printJsonLine } from './lib';
import { countDuring, KEYS, withFilledCache } from './cache/ops-app';

const SCENARIO = 'cache-l1';
const CONCURRENCY = 100;

benchMain(SCENARIO, (settings) =>
  withFilledCache('l1', async ({ cache, peer }) => {
    let a = 0;
    let b = 0;
    const [summary, check] = await countDuring(cache, 'l1', ['l1Hits', 'l2Hits', 'misses'], () =>
      compare({
        scenario: SCENARIO,
        variant: 'get-c100',
        description: `get of a ~300 B JSON value, ${CONCURRENCY} in flight, ${KEYS} keys`,
        concurrency: CONCURRENCY,
        goal: 20,
        settings,
        ours: {
          label: 'CacheService.get (L1 hit)',
          op: () => cache.get(`v:${a++ % KEYS}`, { profile: 'l1' }),
        },
        peer: { label: 'ioredis GET', op: () => peer.get(`peer:v:${b++ % KEYS}`) },
      }),
    );
    printJsonLine({ type: 'check', scenario: SCENARIO, ...check });
    if (check.misses > 0 || check.l2Hits > 0) throw new Error('not every read was an L1 hit');
    return [summary];
  }),
);
