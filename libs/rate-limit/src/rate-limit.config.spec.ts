import fc from 'fast-check';
import { resolveRateLimitConfig } from './rate-limit.config';
import { RateLimit } from './rate-limit.decorator';
import { RateLimitConfigError } from './rate-limit.errors';
import type { RateLimitModuleOptions } from './rate-limit.interfaces';

const fails = (options: unknown) => () => resolveRateLimitConfig(options as RateLimitModuleOptions);

describe('resolveRateLimitConfig', () => {
  it('applies the documented defaults', () => {
    const c = resolveRateLimitConfig();
    expect(c.defaults).toMatchObject({
      points: 100,
      duration: 60_000,
      algorithm: 'fixed-window',
      key: 'ip',
      cost: 1,
    });
    expect(c).toMatchObject({
      instances: 1,
      trustProxy: 0,
      ipv6Prefix: 56,
      headers: true,
      legacyHeaders: false,
      limitAllRoutes: true,
      client: 'default',
      failClosedRetryAfter: 5_000,
    });
  });

  it('refuses "trust every proxy" and says why', () => {
    for (const trustProxy of [true, '*', Infinity]) {
      expect(fails({ trustProxy })).toThrow(
        /trustProxy must be the number of proxies in front of the app .*"Trust every proxy" is refused/,
      );
    }
    expect(fails({ trustProxy: -1 })).toThrow('trustProxy must be an integer from 0 to 32; got -1');
    expect(resolveRateLimitConfig({ trustProxy: 2 }).trustProxy).toBe(2);
  });

  it('names the field and the fix', () => {
    expect(fails({ points: 0 })).toThrow(
      'Invalid rate limit configuration: points must be an integer from 1 to',
    );
    expect(fails({ duraton: 1_000 })).toThrow('duraton is an unknown option; did you mean duration?');
    expect(fails({ duration: 1_500 })).toThrow(
      /duration \(1500 ms\) must be whole seconds for the fixed-window algorithm .* use algorithm 'sliding-window' or 'token-bucket'/,
    );
    expect(resolveRateLimitConfig({ duration: 1_500, algorithm: 'sliding-window' }).defaults.duration).toBe(
      1_500,
    );
    expect(fails({ algorithm: 'leaky' })).toThrow(
      "algorithm must be one of 'fixed-window', 'sliding-window', 'token-bucket'",
    );
    expect(fails({ policies: { 'bad name': { points: 1 } } })).toThrow(
      'policies.bad name has an invalid name',
    );
    expect(fails({ policies: { login: { points: 5, cost: 6 } } })).toThrow(
      'policies.login.cost (6) is larger than points (5); no request could ever be admitted',
    );
    expect(fails({ policies: { pair: [{ points: 1 }, { duration: 10 }] } })).toThrow(
      'policies.pair[1].duration (10 ms)',
    );
    expect(fails({ ipv6Prefix: 129 })).toThrow('ipv6Prefix must be an integer from 1 to 128');
    expect(fails({ instances: 0 })).toThrow('instances must be an integer from 1 to 10000');
  });

  it('throws nothing but RateLimitConfigError for arbitrary input, and never echoes long strings (fast-check)', () => {
    const secret = 'sup3r-s3cret-value-that-must-not-leak';
    const value = fc.oneof(
      fc.integer(),
      fc.double(),
      fc.boolean(),
      fc.constant(secret),
      fc.string(),
      fc.constant(null),
      fc.constant(undefined),
      fc.constant(Infinity),
      fc.constantFrom('ip', 'user', 'fixed-window', 'sliding-window', 'token-bucket'),
    );
    const keys = fc.constantFrom(
      'points',
      'duration',
      'algorithm',
      'key',
      'blockDuration',
      'cost',
      'critical',
      'shadow',
      'instances',
      'trustProxy',
      'ipv6Prefix',
      'headers',
      'legacyHeaders',
      'limitAllRoutes',
      'client',
      'failClosedRetryAfter',
      'policies',
      'local',
      'surprise',
    );
    fc.assert(
      fc.property(fc.dictionary(keys, fc.oneof(value, fc.dictionary(fc.string(), value))), (options) => {
        try {
          resolveRateLimitConfig(options as RateLimitModuleOptions);
        } catch (err) {
          expect(err).toBeInstanceOf(RateLimitConfigError);
          expect((err as Error).message).not.toContain(secret);
        }
      }),
      { numRuns: 3_000 },
    );
  });
});

describe('@RateLimit()', () => {
  it('rejects an invalid limit when the class is defined, naming Controller.method', () => {
    expect(() => {
      class Boards {
        @RateLimit({ points: 10 }, { points: -1 })
        list() {}
      }
      return Boards;
    }).toThrow(
      'Invalid rate limit configuration: @RateLimit(Boards.list)[1].points must be an integer from 1',
    );
    expect(() => {
      @RateLimit({ key: 'session' as never })
      class Cards {}
      return Cards;
    }).toThrow("@RateLimit(Cards).key must be 'ip', 'user' or a function");
  });
});
