// The cache's Prometheus metrics through @redwing/metrics' MetricsService (imported as the gateway does), and
// the cache working without the metrics module at all.
import { Test } from '@nestjs/testing';
import { MetricsModule, MetricsService } from '@redwing/metrics';
import { RedisClientModule } from '@redwing/redis';
import { CacheModule, CacheService } from '@redwing/cache';
import { RedisServer, stopAll } from '../../../test/harness';
import { bootCache, countingLoader, fastRedisOptions, waitFor } from './helpers';

afterAll(() => stopAll());

describe('metrics', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await RedisServer.start();
  });
  afterAll(() => server?.stop());

  it('exports hits by tier, misses, loads, L1 size and hit ratio as redwing_cache_* metrics', async () => {
    const module = await Test.createTestingModule({
      imports: [
        MetricsModule.forRoot({ serviceName: 'cache-test' }),
        RedisClientModule.forRoot({ ...fastRedisOptions, url: server.url() }),
        CacheModule.forRoot({ profiles: { kanban: {} } }),
      ],
    }).compile();
    await module.init();
    try {
      const cache = module.get(CacheService);
      const metrics = module.get(MetricsService);
      await waitFor('sync', 10_000, async () => (await cache.stats({ redis: false })).invalidation.synced);
      const loader = countingLoader('v');
      await cache.getOrSet('a', loader.load, { profile: 'kanban' }); // miss + load
      await cache.get('a', { profile: 'kanban' }); // L1 hit
      await cache.get('a', { profile: 'kanban' }); // L1 hit
      await cache.get('absent'); // miss
      const text = await metrics.metrics();
      expect(text).toMatch(/redwing_cache_hits_total\{tier="l1",profile="kanban"\} 2/);
      expect(text).toMatch(/redwing_cache_misses_total\{profile="kanban"\} 1/);
      expect(text).toMatch(/redwing_cache_misses_total\{profile="default"\} 1/);
      expect(text).toMatch(/redwing_cache_loads_total\{profile="kanban",outcome="ok"\} 1/);
      expect(text).toMatch(/redwing_cache_l1_entries_current\{profile="kanban"\} 1/);
      expect(text).toMatch(/redwing_cache_hit_ratio\{profile="kanban"\} 0\.66/);
      expect(text).toMatch(/redwing_cache_load_duration_seconds_count\{profile="kanban"\} 1/);
      expect(text).toMatch(/redwing_cache_invalidations_total\{direction="published"\} \d+/);
      expect(await metrics.sum('redwing_cache_hits_total')).toBe(2);
    } finally {
      await module.close();
    }
  });

  it('works without the metrics module', async () => {
    const inst = await bootCache({ url: server.url() });
    try {
      await inst.cache.set('k', 1);
      expect(await inst.cache.get('k')).toBe(1);
    } finally {
      await inst.module.close();
    }
  });
});
