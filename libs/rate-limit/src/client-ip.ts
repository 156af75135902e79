import { isIPv4, isIPv6 } from 'node:net';

/** How the client address is found; see `RateLimitModuleOptions.trustProxy` and `ipv6Prefix`. */
export interface ClientIpOptions {
  /** Reverse proxies in front of the app that append to `X-Forwarded-For`. */
  trustProxy: number;
  /** IPv6 clients are grouped by this prefix length. */
  ipv6Prefix: number;
}

/** The parts of an HTTP request (Node, Express, Fastify, or a WebSocket upgrade) the address comes from. */
export interface ClientIpSource {
  headers?: Record<string, string | string[] | undefined>;
  /** The socket's peer address (`req.socket.remoteAddress`). */
  remoteAddress?: string;
}

/**
 * The rate-limit subject of a client address: `ip:<IPv4>` or `ip:<IPv6 network>/<prefix>`, taken `trustProxy`
 * hops from the socket. An `X-Forwarded-For` entry that is not an address (a forged header that did not come
 * through the trusted proxies) is ignored in favour of the socket address.
 * @example clientIpKey({ headers: req.headers, remoteAddress: req.socket.remoteAddress }, { trustProxy: 1, ipv6Prefix: 56 })
 */
export function clientIpKey(source: ClientIpSource, options: ClientIpOptions): string {
  const remote = source.remoteAddress;
  let picked: string | undefined = remote;
  if (options.trustProxy > 0) {
    const header = source.headers?.['x-forwarded-for'];
    const forwarded = Array.isArray(header) ? header.join(',') : header;
    if (forwarded) picked = forwardedAddress(forwarded, options.trustProxy);
  }
  const ip =
    (picked !== undefined && normalizeIp(picked, options.ipv6Prefix)) ||
    (picked !== remote && remote !== undefined && normalizeIp(remote, options.ipv6Prefix)) ||
    undefined;
  return ip ? `ip:${ip}` : 'ip:unknown';
}

/**
 * The entry `hops` places from the right of an `X-Forwarded-For` list whose right end is the socket peer:
 * with one proxy the last entry (what the proxy appended), with two the one before it, and so on. With
 * fewer entries than hops, the leftmost. Scans from the right, so a huge forged header costs nothing.
 */
export function forwardedAddress(forwarded: string, hops: number): string {
  let end = forwarded.length;
  for (let i = 1; i < hops; i++) {
    const comma = forwarded.lastIndexOf(',', end - 1);
    if (comma < 0) return forwarded.slice(0, end).trim();
    end = comma;
  }
  return forwarded.slice(forwarded.lastIndexOf(',', end - 1) + 1, end).trim();
}

/**
 * Canonical form of an address for counting: IPv4 as is; IPv4-mapped IPv6 (`::ffff:1.2.3.4`) as IPv4; other
 * IPv6 as its network `<groups>::/<prefix>`. Brackets, ports and zone ids are removed. `undefined` when the
 * text is not an address.
 */
export function normalizeIp(raw: string, ipv6Prefix: number): string | undefined {
  let text = raw.trim();
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) return undefined;
    text = text.slice(1, close);
  } else if (text.indexOf(':') === text.lastIndexOf(':') && text.includes('.')) {
    text = text.split(':')[0]; // 1.2.3.4:5678
  }
  const zone = text.indexOf('%');
  if (zone >= 0) text = text.slice(0, zone);
  if (isIPv4(text)) return text;
  if (!isIPv6(text)) return undefined;
  const groups = ipv6Groups(text);
  if (groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 && groups[4] === 0) {
    if (groups[5] === 0xffff) {
      return `${groups[6] >> 8}.${groups[6] & 0xff}.${groups[7] >> 8}.${groups[7] & 0xff}`;
    }
  }
  return ipv6Network(groups, ipv6Prefix);
}

/** The eight 16-bit groups of a valid IPv6 address (with `::` and a dotted IPv4 tail expanded). */
export function ipv6Groups(text: string): number[] {
  let address = text.toLowerCase();
  const tail: number[] = [];
  if (address.includes('.')) {
    const colon = address.lastIndexOf(':');
    const [a, b, c, d] = address
      .slice(colon + 1)
      .split('.')
      .map(Number);
    tail.push((a << 8) | b, (c << 8) | d);
    address = address.slice(0, colon + 1) + '0'; // placeholder group, replaced below
  }
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  const double = address.indexOf('::');
  let groups: number[];
  if (double >= 0) {
    const head = parse(address.slice(0, double));
    const rest = parse(address.slice(double + 2));
    const width = tail.length ? 7 : 8;
    groups = [...head, ...new Array<number>(width - head.length - rest.length).fill(0), ...rest];
  } else {
    groups = parse(address);
  }
  if (tail.length) groups.splice(groups.length - 1, 1, ...tail);
  return groups;
}

/** `<prefix groups>::/<prefix>`, bits past the prefix cleared; the full address when `prefix` is 128. */
export function ipv6Network(groups: number[], prefix: number): string {
  const kept = Math.ceil(prefix / 16);
  const out: string[] = [];
  for (let i = 0; i < kept; i++) {
    const bits = Math.min(16, prefix - i * 16);
    const mask = bits === 16 ? 0xffff : (0xffff << (16 - bits)) & 0xffff;
    out.push((groups[i] & mask).toString(16));
  }
  return `${out.join(':')}${kept < 8 ? '::' : ''}/${prefix}`;
}
