import { resolveRateLimitConfig, specOf, validateLimit } from './rate-limit.config';
import { RateLimit } from './rate-limit.decorator';
import { RateLimitConfigError } from './rate-limit.errors';
import type { RateLimitModuleOptions } from './rate-limit.interfaces';

const resolve = (options: unknown) => () => resolveRateLimitConfig(options as RateLimitModuleOptions);

describe("counting: 'exact' | 'leased'", () => {
  it("is 'exact' by default, for the module and for every limit", () => {
    const c = resolveRateLimitConfig();
    expect(c.defaults.counting).toBe('exact');
    expect(specOf({ points: 5 }, c.defaults, 'x').counting).toBe('exact');
  });

  it("module counting: 'leased' applies to fixed-window limits only; the others stay exact", () => {
    const c = resolveRateLimitConfig({ counting: 'leased' });
    expect(specOf({ points: 5 }, c.defaults, 'x').counting).toBe('leased');
    expect(specOf({ points: 5, algorithm: 'sliding-window' }, c.defaults, 'x').counting).toBe('exact');
    expect(specOf({ points: 5, algorithm: 'token-bucket' }, c.defaults, 'x').counting).toBe('exact');
    expect(specOf({ points: 5, counting: 'exact' }, c.defaults, 'x').counting).toBe('exact');
    // A module whose default algorithm is not a fixed window may still say 'leased' (for fixed-window routes).
    const sliding = resolveRateLimitConfig({ counting: 'leased', algorithm: 'sliding-window' });
    expect(specOf({ points: 5 }, sliding.defaults, 'x').counting).toBe('exact');
    expect(specOf({ points: 5, algorithm: 'fixed-window' }, sliding.defaults, 'x').counting).toBe('leased');
  });

  it("refuses 'leased' on a sliding window or token bucket, and unknown values, naming the field", () => {
    const c = resolveRateLimitConfig();
    for (const algorithm of ['sliding-window', 'token-bucket'] as const) {
      expect(() =>
        validateLimit(specOf({ algorithm, counting: 'leased' }, c.defaults, 'x'), '@RateLimit(A.b).'),
      ).toThrow(/@RateLimit\(A\.b\)\.counting.*'leased' works with the fixed-window algorithm only/);
      expect(resolve({ policies: { p: { algorithm, counting: 'leased' } } })).toThrow(
        /policies\.p\.counting/,
      );
    }
    expect(resolve({ counting: 'lazy' })).toThrow(RateLimitConfigError);
    expect(resolve({ counting: 'lazy' })).toThrow(/counting must be one of 'exact', 'leased'; got a string/);
    expect(() => {
      class Boards {
        @RateLimit({ counting: 'sometimes' as never })
        list() {}
      }
      return Boards;
    }).toThrow("@RateLimit(Boards.list).counting must be one of 'exact', 'leased'");
    expect(() => {
      class Cards {
        @RateLimit({ algorithm: 'token-bucket', counting: 'leased' })
        add() {}
      }
      return Cards;
    }).toThrow("@RateLimit(Cards.add).counting 'leased' works with the fixed-window algorithm only");
  });
});
