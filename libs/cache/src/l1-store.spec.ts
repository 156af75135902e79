import { L1Store } from './l1-store';

const meta = (freshUntil: number, tags?: string[]) => ({
  freshUntil,
  staleUntil: freshUntil + 1_000,
  delta: 0,
  tags,
});

describe('L1Store', () => {
  it('is bounded by entries (least recently used first) and counts evictions', () => {
    const l1 = new L1Store(3, 1_000_000, 60_000);
    for (const k of ['a', 'b', 'c'])
      l1.set(k, { value: k, size: 10, ...meta(Date.now() + 60_000) }, Date.now());
    l1.get('a', Date.now());
    l1.set('d', { value: 'd', size: 10, ...meta(Date.now() + 60_000) }, Date.now());
    expect([...['a', 'b', 'c', 'd']].map((k) => l1.get(k, Date.now())?.value)).toEqual([
      'a',
      undefined,
      'c',
      'd',
    ]);
    expect(l1.stats()).toMatchObject({ entries: 3, evictions: 1 });
  });

  it('is bounded by bytes and refuses one entry larger than the whole tier', () => {
    const l1 = new L1Store(1_000, 2_048, 60_000);
    const now = Date.now();
    for (let i = 0; i < 20; i++) l1.set(`k${i}`, { value: i, size: 200, ...meta(now + 60_000) }, now);
    expect(l1.stats().bytes).toBeLessThanOrEqual(2_048);
    expect(l1.size).toBeLessThan(20);
    expect(l1.set('huge', { value: 'x', size: 5_000, ...meta(now + 60_000) }, now)).toBe(false);
    expect(l1.get('huge', now)).toBeUndefined();
  });

  it('drops entries past their stale window or the L1 ttl, on read', () => {
    const l1 = new L1Store(10, 1_000_000, 100);
    const now = Date.now();
    l1.set('a', { value: 1, size: 1, ...meta(now + 10_000) }, now);
    expect(l1.get('a', now + 99)?.value).toBe(1);
    expect(l1.get('a', now + 100)).toBeUndefined();
    expect(l1.size).toBe(0);
  });

  it('deletes by tag through its index, and by prefix', () => {
    const l1 = new L1Store(100, 1_000_000, 60_000);
    const now = Date.now();
    l1.set('board:1', { value: 1, size: 1, ...meta(now + 60_000, ['board:1', 'boards']) }, now);
    l1.set('board:2', { value: 2, size: 1, ...meta(now + 60_000, ['board:2', 'boards']) }, now);
    l1.set('user:1', { value: 3, size: 1, ...meta(now + 60_000, ['user:1']) }, now);
    expect(l1.deleteTags(['board:1'])).toBe(1);
    expect(l1.get('board:2', now)?.value).toBe(2);
    expect(l1.deleteTags(['boards'])).toBe(1);
    expect(l1.deletePrefix('user:')).toBe(1);
    expect(l1.size).toBe(0);
    // An overwrite without the tag leaves the index: the tag no longer deletes it.
    l1.set('x', { value: 1, size: 1, ...meta(now + 60_000, ['t']) }, now);
    l1.set('x', { value: 2, size: 1, ...meta(now + 60_000) }, now);
    expect(l1.deleteTags(['t'])).toBe(0);
    expect(l1.get('x', now)?.value).toBe(2);
  });

  it('tracks entries written while Redis was down and drops exactly those', () => {
    const l1 = new L1Store(100, 1_000_000, 60_000);
    const now = Date.now();
    l1.set('before', { value: 1, size: 1, ...meta(now + 60_000) }, now);
    l1.set('during', { value: 2, size: 1, ...meta(now + 60_000) }, now, true);
    l1.set('rewritten', { value: 3, size: 1, ...meta(now + 60_000) }, now, true);
    l1.set('rewritten', { value: 4, size: 1, ...meta(now + 60_000) }, now); // stored in Redis later: no longer local-only
    expect(l1.stats().localOnly).toBe(1);
    expect(l1.dropLocalOnly()).toBe(1);
    expect(['before', 'during', 'rewritten'].map((k) => l1.get(k, now)?.value)).toEqual([1, undefined, 4]);
  });
});
