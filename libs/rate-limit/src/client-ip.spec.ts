import fc from 'fast-check';
import { clientIpKey, forwardedAddress, ipv6Groups, normalizeIp } from './client-ip';

const opts = (trustProxy = 0, ipv6Prefix = 56) => ({ trustProxy, ipv6Prefix });

describe('forwardedAddress', () => {
  it('takes the entry `hops` places from the right of X-Forwarded-For + socket', () => {
    expect(forwardedAddress('a, b, c', 1)).toBe('c');
    expect(forwardedAddress('a, b, c', 2)).toBe('b');
    expect(forwardedAddress('a, b, c', 3)).toBe('a');
    expect(forwardedAddress('a, b, c', 9)).toBe('a');
    expect(forwardedAddress('solo', 1)).toBe('solo');
  });
});

describe('clientIpKey', () => {
  it('uses the socket address without trusted proxies, whatever X-Forwarded-For says', () => {
    const headers = { 'x-forwarded-for': '6.6.6.6' };
    expect(clientIpKey({ headers, remoteAddress: '10.0.0.1' }, opts(0))).toBe('ip:10.0.0.1');
  });

  it('with one trusted proxy, counts what the proxy appended, ignoring the client-supplied part', () => {
    // The client sent "X-Forwarded-For: 6.6.6.6"; the proxy (10.0.0.9) appended the client's real address.
    const headers = { 'x-forwarded-for': '6.6.6.6, 203.0.113.7' };
    expect(clientIpKey({ headers, remoteAddress: '10.0.0.9' }, opts(1))).toBe('ip:203.0.113.7');
    expect(
      clientIpKey(
        { headers: { 'x-forwarded-for': ['1.1.1.1', '203.0.113.7'] }, remoteAddress: '10.0.0.9' },
        opts(1),
      ),
    ).toBe('ip:203.0.113.7');
  });

  it('falls back to the socket address when the chosen entry is not an address', () => {
    const headers = { 'x-forwarded-for': '<script>' };
    expect(clientIpKey({ headers, remoteAddress: '10.0.0.1' }, opts(1))).toBe('ip:10.0.0.1');
    expect(clientIpKey({ headers: {}, remoteAddress: undefined }, opts(1))).toBe('ip:unknown');
  });

  it('every spoofed header from one client behind one proxy lands in one bucket (fast-check)', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.ipV4(), fc.ipV6(), fc.string()), { maxLength: 6 }), (spoofed) => {
        const headers = { 'x-forwarded-for': [...spoofed, '198.51.100.23'].join(', ') };
        expect(clientIpKey({ headers, remoteAddress: '10.0.0.9' }, opts(1))).toBe('ip:198.51.100.23');
      }),
      { numRuns: 2_000 },
    );
  });
});

describe('normalizeIp', () => {
  it('maps IPv4-mapped IPv6 to IPv4 and strips brackets, ports and zones', () => {
    expect(normalizeIp('::ffff:192.0.2.1', 56)).toBe('192.0.2.1');
    expect(normalizeIp('::FFFF:c000:0201', 56)).toBe('192.0.2.1');
    expect(normalizeIp('[::ffff:192.0.2.1]:443', 56)).toBe('192.0.2.1');
    expect(normalizeIp('192.0.2.1:8080', 56)).toBe('192.0.2.1');
    expect(normalizeIp(' 192.0.2.1 ', 56)).toBe('192.0.2.1');
    expect(normalizeIp('fe80::1%eth0', 64)).toBe('fe80:0:0:0::/64');
    expect(normalizeIp('not-an-ip', 56)).toBeUndefined();
    expect(normalizeIp('999.1.1.1', 56)).toBeUndefined();
  });

  it('groups IPv6 by the prefix (default /56)', () => {
    expect(normalizeIp('2001:db8:1234:5678:9abc::1', 56)).toBe('2001:db8:1234:5600::/56');
    expect(normalizeIp('2001:db8:1234:56ff:ffff:ffff:ffff:ffff', 56)).toBe('2001:db8:1234:5600::/56');
    expect(normalizeIp('2001:db8:1234:5700::', 56)).toBe('2001:db8:1234:5700::/56');
    expect(normalizeIp('2001:db8::1', 128)).toBe('2001:db8:0:0:0:0:0:1/128');
    expect(normalizeIp('2001:db8::1', 1)).toBe('0::/1');
  });

  it('puts every address of a /56 in one group and different /56s in different ones (fast-check)', () => {
    const group = fc.integer({ min: 0, max: 0xffff });
    fc.assert(
      fc.property(
        fc.array(group, { minLength: 8, maxLength: 8 }).filter((g) => g[0] !== 0),
        fc.array(group, { minLength: 4, maxLength: 4 }),
        fc.integer({ min: 0, max: 55 }),
        (g, tail, bit) => {
          const a = g.map((x) => x.toString(16)).join(':');
          // Same first 56 bits, anything after.
          const sameNet = [
            ...g.slice(0, 3),
            (g[3] & 0xff00) | (tail[0] & 0xff),
            tail[1],
            tail[2],
            tail[3],
            g[7],
          ];
          const b = sameNet.map((x) => x.toString(16)).join(':');
          const na = normalizeIp(a, 56);
          expect(na).toBe(normalizeIp(b, 56));
          // Compressed spellings of the same address agree.
          const compressed = a.replace(/(^|:)0(:0)+(:|$)/, '::');
          if (compressed.split('::').length === 2) expect(normalizeIp(compressed, 56)).toBe(na);
          expect(ipv6Groups(a)).toEqual(g);
          // Flipping any bit of the first 56 gives another group.
          const other = [...g];
          other[Math.floor(bit / 16)] ^= 1 << (15 - (bit % 16));
          expect(normalizeIp(other.map((x) => x.toString(16)).join(':'), 56)).not.toBe(na);
        },
      ),
      { numRuns: 2_000 },
    );
  });
});
