import { LabelLimiter, OTHER } from './label-limiter';

describe('LabelLimiter', () => {
  it('passes the first max distinct values and maps later ones to "other"', () => {
    const l = new LabelLimiter(2);
    expect(['a', 'b', 'a', 'c', 'b', 'd'].map((v) => l.get(v))).toEqual(['a', 'b', 'a', OTHER, 'b', OTHER]);
  });

  it('stays bounded whatever it is fed', () => {
    const l = new LabelLimiter(100);
    const seen = new Set<string>();
    for (let i = 0; i < 100_000; i++) seen.add(l.get(`/route/${i}`));
    expect(seen.size).toBe(101);
  });
});
