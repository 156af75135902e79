import fc from 'fast-check';
import { resolveCacheConfig, resolveRouteKeyOptions } from './cache.config';
import { CacheConfigError } from './cache.errors';
import type { CacheModuleOptions } from './cache.interfaces';

describe('resolveCacheConfig', () => {
  it('applies the documented defaults', () => {
    const c = resolveCacheConfig({});
    expect(c).toMatchObject({
      client: 'default',
      compression: { threshold: 16_384, level: 1 },
      maxValueSize: 1_048_576,
      invalidation: true,
      maxDeferredInvalidations: 10_000,
    });
    expect(c.profiles.get('default')).toEqual({
      name: 'default',
      ttl: 60_000,
      staleWhileRevalidate: 0,
      staleIfError: 0,
      earlyRefresh: 0,
      l1: { maxEntries: 10_000, maxBytes: 33_554_432, ttl: 365 * 24 * 3_600_000 },
      lock: null,
    });
  });

  it('lets profiles inherit the top level field by field', () => {
    const c = resolveCacheConfig({
      ttl: 5_000,
      staleIfError: 1_000,
      lock: true,
      l1: { maxEntries: 50 },
      profiles: { kanban: { ttl: 10_000, earlyRefresh: true, l1: false }, user: { lock: { wait: 100 } } },
    });
    expect(c.profiles.get('kanban')).toMatchObject({
      ttl: 10_000,
      staleIfError: 1_000,
      earlyRefresh: 1,
      l1: null,
      lock: { ttl: 5_000, wait: 5_000 },
    });
    expect(c.profiles.get('user')).toMatchObject({
      ttl: 5_000,
      l1: { maxEntries: 50 },
      lock: { ttl: 5_000, wait: 100 },
    });
  });

  it.each<[CacheModuleOptions, RegExp]>([
    [{ ttl: 0 }, /^Invalid cache configuration: ttl must be an integer from 1 to \d+ ms; got 0$/],
    [{ ttl: 1.5 }, /ttl must be an integer/],
    [
      { profiles: { kanban: { staleWhileRevalidate: -1 } } },
      /profiles\.kanban\.staleWhileRevalidate must be an integer from 0/,
    ],
    [{ profiles: { 'bad name': {} } }, /profiles\.bad name is not a valid profile name/],
    [{ profiles: { 'a~b': {} } }, /not a valid profile name/],
    [{ tll: 5 } as CacheModuleOptions, /tll is an unknown option; did you mean ttl\?/],
    [
      { l1: { maxEntrys: 5 } } as unknown as CacheModuleOptions,
      /l1\.maxEntrys is an unknown option; did you mean maxEntries\?/,
    ],
    [{ compression: { level: 12 } }, /compression\.level must be an integer from 1 to 9/],
    [{ lock: { ttl: 0 } }, /lock\.ttl must be an integer from 1/],
    [{ earlyRefresh: { beta: 0 } }, /earlyRefresh\.beta must be a number above 0/],
    [{ client: 'no spaces' }, /client must name a @redwing\/redis client/],
    [{ http: { userKey: 'id' } } as unknown as CacheModuleOptions, /http\.userKey must be a function/],
    [
      { http: { credentialHeaders: ['bad header'] } },
      /http\.credentialHeaders\[0\] must be an HTTP header name/,
    ],
    [
      { http: { credentialHeaders: 'cookie' } } as unknown as CacheModuleOptions,
      /http\.credentialHeaders must be an array/,
    ],
  ])('rejects %j naming the field', (options, message) => {
    expect(() => resolveCacheConfig(options)).toThrow(CacheConfigError);
    expect(() => resolveCacheConfig(options)).toThrow(message);
  });

  it('treats Authorization and Cookie as credentials by default; route query lists are sorted, vary lower-cased', () => {
    expect(resolveCacheConfig({}).http.credentialHeaders).toEqual(['authorization', 'cookie']);
    expect(
      resolveCacheConfig({ http: { credentialHeaders: ['Authorization'] } }).http.credentialHeaders,
    ).toEqual(['authorization']);
    expect(
      resolveRouteKeyOptions('@Cacheable(A.b)', { query: ['sort', 'page', 'sort'], vary: ['X-Tenant'] }),
    ).toEqual({
      query: ['page', 'sort'],
      vary: ['x-tenant'],
    });
    expect(resolveRouteKeyOptions('@Cacheable(A.b)', {})).toEqual({ query: undefined, vary: undefined });
    expect(() => resolveRouteKeyOptions('@Cacheable(A.b)', { query: 'page' })).toThrow(
      /@Cacheable\(A\.b\)\.query must be an array/,
    );
    expect(() => resolveRouteKeyOptions('@Cacheable(A.b)', { vary: ['a b'] })).toThrow(CacheConfigError);
  });

  it('never throws anything but CacheConfigError for arbitrary input (fast-check)', () => {
    const field = fc.constantFrom(
      'ttl',
      'staleWhileRevalidate',
      'staleIfError',
      'l1',
      'lock',
      'earlyRefresh',
      'compression',
      'maxValueSize',
      'profiles',
      'client',
      'x',
    );
    fc.assert(
      fc.property(fc.dictionary(field, fc.anything({ maxDepth: 2 })), (options) => {
        try {
          resolveCacheConfig(options as CacheModuleOptions);
        } catch (err) {
          expect(err).toBeInstanceOf(CacheConfigError);
          expect((err as Error).message).toMatch(/^Invalid cache configuration: /);
        }
      }),
      { numRuns: 2_000 },
    );
  });
});
