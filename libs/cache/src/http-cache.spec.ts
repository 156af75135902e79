import fc from 'fast-check';
import {
  computeEtag,
  credentialsOf,
  etagMatches,
  requestDirectives,
  responseForbidsStore,
  routeEntryKey,
  splitUrl,
  userIdentity,
  type RouteKeyInput,
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

  it('a single plain query parameter is kept as is, and that is what URLSearchParams gives back for it', () => {
    // Every one-parameter query over an alphabet with characters the form encoding keeps and ones it rewrites.
    const alphabet = ['a', 'Z', '0', '_', '.', '*', '-', '~', ' ', '%41', '+', '=', '&', 'é', '/'];
    let seed = 7;
    const pick = () => alphabet[(seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648) % alphabet.length];
    let plain = 0;
    for (let i = 0; i < 5_000; i++) {
      const word = (n: number) => Array.from({ length: n }, pick).join('');
      const raw = `${word(1 + (i % 4))}=${word(i % 5)}`;
      const expected = new URLSearchParams(raw);
      expected.sort();
      expect(splitUrl(`/p?${raw}`).query).toBe(expected.toString());
      if (splitUrl(`/p?${raw}`).query === raw) plain++;
    }
    expect(plain).toBeGreaterThan(100); // queries that stay as they are really occurred
    expect(splitUrl('/l2?n=17')).toEqual({ path: '/l2', query: 'n=17' });
  });

  it('sorts the query so parameter order does not split entries; an allow-list keeps only its parameters', () => {
    expect(splitUrl('/boards?b=2&a=1')).toEqual({ path: '/boards', query: 'a=1&b=2' });
    expect(splitUrl('/boards?')).toEqual({ path: '/boards', query: '' });
    expect(splitUrl('/boards')).toEqual({ path: '/boards', query: '' });
    expect(splitUrl('/b?sort=x&cb=1&page=2&page=1', ['page', 'sort'])).toEqual({
      path: '/b',
      query: 'page=2&page=1&sort=x',
    });
    expect(splitUrl('/b?cb=1', [])).toEqual({ path: '/b', query: '' });
    const key = (url: string, user?: string) => routeEntryKey({ method: 'GET', url, user });
    expect(key('/b?x=1&a=2')).toBe(key('/b?a=2&x=1'));
    expect(key('/b?x=1&a=2')).toBe('~http:r3:GET2:/b7:a=2&x=1g');
    expect(key('/b', 'alice')).toBe('~http:r3:GET2:/b0:u5:alice');
    expect(key('/b', 'x'.repeat(100))).toMatch(/^~http:r3:GET2:\/b0:U43:[\w-]{43}$/);
    expect(routeEntryKey({ method: 'GET', url: '/b?cb=1', query: [] })).toBe(
      key('/b?cb=2'.replace(/\?.*/, '')),
    );
  });

  it('no path, query or custom key spells a per-user key (the three exploits of issue 13)', () => {
    const alice = routeEntryKey({ method: 'GET', url: '/r', user: 'alice' });
    const bob = routeEntryKey({ method: 'GET', url: '/r', user: 'bob' });
    // GET /r#u:alice and GET /r#u:bob sent raw, anonymously
    expect(routeEntryKey({ method: 'GET', url: '/r#u:alice' })).not.toBe(alice);
    expect(routeEntryKey({ method: 'GET', url: '/r#u:bob' })).not.toBe(bob);
    // @Cacheable({ key: (req) => `search:${req.query.q}` }) with ?q=boards%23u:alice
    const custom = routeEntryKey({ method: 'GET', url: '/s', custom: 'search:boards', user: 'alice' });
    expect(routeEntryKey({ method: 'GET', url: '/s', custom: 'search:boards#u:alice' })).not.toBe(custom);
    expect(routeEntryKey({ method: 'GET', url: '/s', custom: custom.slice('~http:k'.length) })).not.toBe(
      custom,
    );
  });

  it('two requests that differ in user or scope never share a key (fast-check)', () => {
    const HOSTILE = [
      '#',
      'u',
      'U',
      ':',
      'g',
      'k',
      'r',
      'v',
      '~',
      '1',
      '5',
      '0',
      '/',
      '?',
      '&',
      '=',
      '%',
      'a',
    ];
    // Lone surrogates and U+FFFD: Redis stores keys as UTF-8, where every lone surrogate becomes U+FFFD.
    const SURROGATES = ['\ud800', '\udc00', '\udbff', '\ufffd', 'a'];
    const text = fc.oneof(
      fc.string({ unit: fc.constantFrom(...HOSTILE), maxLength: 12 }),
      fc.string({ unit: 'grapheme', maxLength: 12 }),
      fc.string({ unit: fc.constantFrom(...SURROGATES), maxLength: 4 }),
      fc.string({ unit: fc.constantFrom('x', 'y', ...SURROGATES), minLength: 60, maxLength: 70 }),
    );
    const request = fc.record(
      {
        method: fc.constantFrom('GET', 'POST'),
        url: fc
          .tuple(text, fc.option(text, { nil: undefined }))
          .map(([p, q]) => `/${p}${q === undefined ? '' : `?${q}`}`),
        query: fc.option(fc.array(text, { maxLength: 3 }), { nil: undefined }),
        custom: fc.option(text, { nil: undefined }),
        user: fc.option(text, { nil: undefined }),
        vary: fc.option(
          fc.array(
            fc.tuple(fc.constantFrom('cookie', 'authorization', 'x-a'), fc.option(text, { nil: undefined })),
            { maxLength: 2 },
          ),
          { nil: undefined },
        ),
      },
      { requiredKeys: ['method', 'url'] },
    );
    /** b built from a's key: its key text (or the old `#u:` form) in b's path, query or custom key. */
    const forged = request.chain((a) =>
      fc
        .tuple(fc.constant(a), fc.nat({ max: 40 }), fc.constantFrom('url', 'custom', 'query', 'twin'))
        .map(([, cut, where]) => {
          // The user whose id Redis would store as the same bytes (lone surrogates -> U+FFFD).
          if (where === 'twin') return [a, { ...a, user: toWellFormed(a.user ?? '\ud800') }] as const;
          const k = routeEntryKey(a);
          const piece = k.slice(Math.min(cut, k.length));
          const old = `${a.custom ?? a.url}#u:${a.user ?? ''}`;
          const b: RouteKeyInput = { method: a.method, url: a.url, query: a.query };
          if (where === 'custom') b.custom = piece;
          else if (where === 'url') b.url = `/${piece}${old}`;
          else b.url = `${a.url}?q=${old}&p=${piece}`;
          return [a, b] as const;
        }),
    );
    const scope = (r: RouteKeyInput) =>
      JSON.stringify([r.user ?? null, r.vary?.length ? r.vary.map(([n, v]) => [n, v ?? null]) : null]);
    let differing = 0;
    fc.assert(
      fc.property(fc.oneof(fc.tuple(request, request), forged), ([a, b]) => {
        if (scope(a) === scope(b)) return;
        differing++;
        // Compared as Redis sees them (UTF-8 bytes), not as JS strings.
        expect(utf8(routeEntryKey(a))).not.toBe(utf8(routeEntryKey(b)));
      }),
      { numRuns: 5_000, seed: 1313 },
    );
    expect(differing).toBeGreaterThan(2_500);
  });

  it('a user id, path, query or custom key with a lone surrogate is not the same Redis key as its U+FFFD twin', () => {
    const pairs: Array<[RouteKeyInput, RouteKeyInput]> = [
      [
        { method: 'GET', url: '/r', user: 'alice\ud800' },
        { method: 'GET', url: '/r', user: 'alice\ufffd' },
      ],
      [
        { method: 'GET', url: '/r', user: `${'x'.repeat(70)}\udc00` },
        { method: 'GET', url: '/r', user: `${'x'.repeat(70)}\ufffd` },
      ],
      [
        { method: 'GET', url: '/s', custom: 'search:\ud800', user: 'bob' },
        { method: 'GET', url: '/s', custom: 'search:\udc00' },
      ],
      [
        { method: 'GET', url: '/p\ud800', user: 'bob' },
        { method: 'GET', url: '/p\ufffd' },
      ],
    ];
    // The premise: as UTF-8 the two user ids are the same bytes.
    expect(utf8(pairs[0][0].user!)).toBe(utf8(pairs[0][1].user!));
    for (const [a, b] of pairs) {
      expect(utf8(routeEntryKey(a))).not.toBe(utf8(routeEntryKey(b)));
      // What is stored is well-formed text, so Redis keeps it byte for byte.
      expect(toWellFormed(routeEntryKey(a))).toBe(routeEntryKey(a));
    }
  });

  it('finds the credential headers a request carries', () => {
    const names = ['authorization', 'cookie'];
    expect(credentialsOf({ cookie: 'sid=1', accept: '*/*' }, names)).toEqual(['cookie']);
    expect(credentialsOf({ authorization: 'Bearer x', cookie: 'a=b' }, names)).toEqual([
      'authorization',
      'cookie',
    ]);
    expect(credentialsOf({ cookie: '' }, names)).toEqual([]);
    expect(credentialsOf({}, names)).toEqual([]);
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

/** A key as Redis stores it: its UTF-8 bytes (a lone surrogate becomes U+FFFD). */
function utf8(key: string): string {
  return Buffer.from(key, 'utf8').toString('hex');
}

/** `text` with every lone surrogate replaced by U+FFFD, as a UTF-8 round trip gives it back. */
function toWellFormed(text: string): string {
  return Buffer.from(text, 'utf8').toString('utf8');
}
