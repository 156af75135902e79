import {
  computeEtag,
  etagMatches,
  normalizeUrl,
  requestDirectives,
  responseForbidsStore,
  routeKey,
  userIdentity,
} from './http-cache';

describe('http-cache helpers', () => {
  it('reads the request Cache-Control directives', () => {
    expect(requestDirectives(undefined)).toEqual({ noStore: false, noCache: false });
    expect(requestDirectives('no-store')).toEqual({ noStore: true, noCache: true });
    expect(requestDirectives('max-age=0')).toEqual({ noStore: false, noCache: true });
    expect(requestDirectives('No-Cache, max-age=60')).toEqual({ noStore: false, noCache: true });
    expect(requestDirectives('max-age=600')).toEqual({ noStore: false, noCache: false });
    expect(requestDirectives(['public', 'no-store'])).toEqual({ noStore: true, noCache: true });
    expect(requestDirectives('no-storex')).toEqual({ noStore: false, noCache: false });
  });

  it('refuses to store no-store responses, and private ones when the entry would be shared', () => {
    expect(responseForbidsStore('no-store', false)).toBe(true);
    expect(responseForbidsStore('private, max-age=60', true)).toBe(true);
    expect(responseForbidsStore('private, max-age=60', false)).toBe(false);
    expect(responseForbidsStore('public, max-age=60', true)).toBe(false);
    expect(responseForbidsStore(undefined, true)).toBe(false);
  });

  it('sorts the query so parameter order does not split entries', () => {
    expect(normalizeUrl('/boards?b=2&a=1')).toBe('/boards?a=1&b=2');
    expect(normalizeUrl('/boards?')).toBe('/boards');
    expect(normalizeUrl('/boards')).toBe('/boards');
    expect(routeKey('GET', '/b?x=1&a=2', undefined)).toBe('http:GET:/b?a=2&x=1');
    expect(routeKey('GET', '/b', 'alice')).toBe('http:GET:/b#u:alice');
    expect(routeKey('GET', '/b', 'x'.repeat(100))).toMatch(/^http:GET:\/b#u:[\w-]{27}$/);
  });

  it('identifies users by id, sub or userId, tells "no user" from "a user without an id"', () => {
    expect(userIdentity({})).toBeUndefined();
    expect(userIdentity({ user: { id: 7 } })).toBe('7');
    expect(userIdentity({ user: { sub: 'auth0|1' } })).toBe('auth0|1');
    expect(userIdentity({ raw: { user: { userId: 'u' } } })).toBe('u');
    expect(userIdentity({ user: 'bob' })).toBe('bob');
    expect(userIdentity({ user: { name: 'no id' } })).toBeNull();
    expect(userIdentity({ user: { id: 1 } }, (req: { user: { id: number } }) => `t:${req.user.id}`)).toBe(
      't:1',
    );
    expect(userIdentity({ user: { id: 1 } }, () => undefined)).toBeUndefined();
  });

  it('compares ETags weakly, with lists and *', () => {
    const tag = computeEtag('{"a":1}');
    expect(tag).toMatch(/^"[\w-]{22}"$/);
    expect(computeEtag('{"a":1}')).toBe(tag);
    expect(computeEtag('{"a":2}')).not.toBe(tag);
    expect(etagMatches(tag, tag)).toBe(true);
    expect(etagMatches(`W/${tag}`, tag)).toBe(true);
    expect(etagMatches(`"x", ${tag}`, tag)).toBe(true);
    expect(etagMatches('*', tag)).toBe(true);
    expect(etagMatches('"x"', tag)).toBe(false);
    expect(etagMatches(undefined, tag)).toBe(false);
  });
});
