import fc from 'fast-check';
import { FallbackStore, estimateSize } from './fallback-store';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('FallbackStore', () => {
  it('evicts the least recently used entry past maxEntries', () => {
    const store = new FallbackStore<string>({ maxEntries: 3 });
    store.set('a', '1');
    store.set('b', '2');
    store.set('c', '3');
    expect(store.get('a')).toBe('1'); // a is now most recent
    store.set('d', '4');
    expect([...store.keys()].sort()).toEqual(['a', 'c', 'd']);
    expect(store.stats()).toMatchObject({ entries: 3, evictions: 1, hits: 1 });
  });

  it('keeps the byte total under maxBytes whatever is written', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.string({ maxLength: 8 }), fc.string({ maxLength: 200 })), { maxLength: 300 }),
        (writes) => {
          const store = new FallbackStore<string>({ maxEntries: 1_000, maxBytes: 2_000 });
          for (const [k, v] of writes) store.set(k, v);
          const { bytes, entries } = store.stats();
          expect(bytes).toBeLessThanOrEqual(2_000);
          expect(entries).toBeLessThanOrEqual(1_000);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('refuses a single entry larger than maxBytes and says so', () => {
    const store = new FallbackStore<string>({ maxBytes: 100 });
    expect(store.set('big', 'x'.repeat(100))).toBe(false);
    expect(store.has('big')).toBe(false);
    expect(store.stats().rejected).toBe(1);
    expect(store.set('small', 'x')).toBe(true);
  });

  it('expires entries after their TTL and reports the remaining TTL', async () => {
    const store = new FallbackStore<string>({ ttl: 60_000 });
    store.set('short', 'v', 30);
    store.set('default', 'v');
    expect(store.ttl('short')).toBeGreaterThan(0);
    expect(store.ttl('short')).toBeLessThanOrEqual(30);
    expect(store.ttl('default')).toBeGreaterThan(30_000);
    expect(store.ttl('missing')).toBe(0);
    await sleep(60);
    expect(store.get('short')).toBeUndefined();
    expect(store.get('default')).toBe('v');
  });

  it('estimates sizes monotonically in the payload', () => {
    expect(estimateSize('abcd')).toBe(8);
    expect(estimateSize(Buffer.alloc(100))).toBe(100);
    expect(estimateSize({ a: 'xx' }, 'key')).toBeGreaterThan(estimateSize({ a: 'x' }, 'key'));
    const deep: Record<string, unknown> = {};
    let cur = deep;
    for (let i = 0; i < 50; i++) cur = (cur.next = {}) as Record<string, unknown>;
    expect(Number.isFinite(estimateSize(deep))).toBe(true);
  });
});
