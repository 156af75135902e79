// cache-l2: CacheService.get answered from Redis (a profile with L1 off) vs raw ioredis GET + JSON.parse of the
// same ~300-byte JSON value, 100 in flight, over 1,000 keys (round robin, so reads of one key rarely overlap).
// Both use the connection options RedisClientModule gives ioredis. Goal (BENCH.md): ≥ 0.9×.
//
//   npm run bench -- cache-l2                       (5 rounds × 3 s per side, 1 s warm-up)
//   npm run bench -- cache-l2 --rounds 15 --ms 1000 (on a busy machine)
import { Redis } from 'ioredis';
import { benchMain, compare, startRedis } from './lib';
import { cacheContext, PEER_OPTIONS, VALUE } from './cache/ops-app';

const SCENARIO = 'cache-l2';
const KEYS = 1_000;
const CONCURRENCY = 100;

benchMain(SCENARIO, async (settings) => {
  const redis = await startRedis();
  const { app, cache } = await cacheContext(redis.url);
  const peer = new Redis({ host: redis.host, port: redis.port, lazyConnect: true, ...PEER_OPTIONS });
  try {
    await peer.connect();
    for (let i = 0; i < KEYS; i++) {
      await cache.set(`v:${i}`, VALUE, { profile: 'l2' });
      await peer.set(`peer:v:${i}`, JSON.stringify(VALUE));
    }
    const expected = JSON.stringify(VALUE);
    if (JSON.stringify(await cache.get('v:7', { profile: 'l2' })) !== expected)
      throw new Error('ours: wrong value');
    if (JSON.stringify(JSON.parse((await peer.get('peer:v:7'))!)) !== expected)
      throw new Error('peer: wrong value');
    const before = (await cache.stats({ redis: false })).profiles.l2;
    let a = 0;
    let b = 0;
    const summary = await compare({
      scenario: SCENARIO,
      variant: 'get-c100',
      description: `get of a ~300 B JSON value from Redis, ${CONCURRENCY} in flight, ${KEYS} keys`,
      concurrency: CONCURRENCY,
      goal: 0.9,
      settings,
      ours: { label: 'CacheService.get (L1 off)', op: () => cache.get(`v:${a++ % KEYS}`, { profile: 'l2' }) },
      peer: {
        label: 'ioredis GET + JSON.parse',
        op: async () => JSON.parse((await peer.get(`peer:v:${b++ % KEYS}`))!),
      },
    });
    const after = (await cache.stats({ redis: false })).profiles.l2;
    const check = {
      l2Hits: after.l2Hits - before.l2Hits,
      misses: after.misses - before.misses,
      l1Hits: after.l1Hits - before.l1Hits,
    };
    process.stdout.write(JSON.stringify({ type: 'check', scenario: SCENARIO, ...check }) + '\n');
    if (check.misses > 0 || check.l1Hits > 0 || check.l2Hits === 0)
      throw new Error('not every read was a Redis hit');
    return [summary];
  } finally {
    peer.disconnect();
    await app.close();
    await redis.stop();
  }
});
