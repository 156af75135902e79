// cache-l1: CacheService.get answered from L1 (in process) vs raw ioredis GET of the same value, 100 in
// flight, over 1,000 keys. Goal (BENCH.md): ≥ 20×.
//
//   npm run bench -- cache-l1
import { Redis } from 'ioredis';
import { benchMain, compare, startRedis } from './lib';
import { cacheContext, PEER_OPTIONS, VALUE } from './cache/ops-app';

const SCENARIO = 'cache-l1';
const KEYS = 1_000;
const CONCURRENCY = 100;

benchMain(SCENARIO, async (settings) => {
  const redis = await startRedis();
  const { app, cache } = await cacheContext(redis.url);
  const peer = new Redis({ host: redis.host, port: redis.port, lazyConnect: true, ...PEER_OPTIONS });
  try {
    await peer.connect();
    for (let i = 0; i < KEYS; i++) {
      await cache.set(`v:${i}`, VALUE, { profile: 'l1' });
      await peer.set(`peer:v:${i}`, JSON.stringify(VALUE));
    }
    const before = (await cache.stats({ redis: false })).profiles.l1;
    let a = 0;
    let b = 0;
    const summary = await compare({
      scenario: SCENARIO,
      variant: 'get-c100',
      description: `get of a ~300 B JSON value, ${CONCURRENCY} in flight, ${KEYS} keys`,
      concurrency: CONCURRENCY,
      goal: 20,
      settings,
      ours: { label: 'CacheService.get (L1 hit)', op: () => cache.get(`v:${a++ % KEYS}`, { profile: 'l1' }) },
      peer: { label: 'ioredis GET', op: () => peer.get(`peer:v:${b++ % KEYS}`) },
    });
    const after = (await cache.stats({ redis: false })).profiles.l1;
    const check = {
      l1Hits: after.l1Hits - before.l1Hits,
      l2Hits: after.l2Hits - before.l2Hits,
      misses: after.misses - before.misses,
    };
    process.stdout.write(JSON.stringify({ type: 'check', scenario: SCENARIO, ...check }) + '\n');
    if (check.misses > 0 || check.l2Hits > 0) throw new Error('not every read was an L1 hit');
    return [summary];
  } finally {
    peer.disconnect();
    await app.close();
    await redis.stop();
  }
});
