import { isIP } from 'node:net';
import { describeValue, quoteValue } from '../config-kit';
import type { RedisClusterNode } from '../redis.interfaces';
import { check, ConfigProblem, LIMITS } from './config-problem';

/** What a `redis://` / `rediss://` URL sets. @internal */
export interface UrlParts {
  tls: boolean;
  host?: string;
  port?: number;
  username?: string;
  password?: string;
  db?: number;
}

/** Where the unknown-key message sends the reader. @internal */
export const SEE_ALSO = 'the @redwing/redis README';
const NODE_KEYS = ['host', 'port'];
// eslint-disable-next-line no-control-regex -- control characters are what it finds
const CONTROL_CHAR = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

/** True for `localhost`, 127.0.0.0/8 and ::1 (also IPv4-mapped), in any notation Node would accept. */
export function isLoopbackHost(host: string): boolean {
  if (typeof host !== 'string' || host === '') return false;
  let h = host.trim().toLowerCase();
  if (h.endsWith('.')) h = h.slice(0, -1);
  if (h === 'localhost') return true;
  if (/[@/?#\\\s]/.test(h)) return false;
  if (isIP(h.replace(/^\[|\]$/g, '')) === 6 && !h.startsWith('[')) h = `[${h}]`;
  let canonical: string;
  try {
    canonical = new URL(`http://${h}/`).hostname;
  } catch {
    return false;
  }
  if (isIP(canonical) === 4) return canonical.startsWith('127.');
  return (
    canonical === 'localhost' ||
    canonical === '[::1]' ||
    /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(canonical)
  );
}

/** Parses `redis://[user:password@]host[:port][/db]` (or `rediss://`). Never echoes the URL. @internal */
export function parseRedisUrl(value: unknown, field: string): UrlParts {
  if (typeof value !== 'string') {
    throw new ConfigProblem(
      field,
      `must be a string such as redis://127.0.0.1:6379; got ${describeValue(value)}`,
    );
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigProblem(
      field,
      // Not echoed: an unparsable value may be a password pasted into the wrong place.
      'is not a valid URL; the form is redis://host:port/db (rediss:// for TLS), with "user:password@" ' +
        'before the host when needed and special characters in them percent-encoded',
    );
  }
  const protocol = url.protocol.toLowerCase();
  if (protocol !== 'redis:' && protocol !== 'rediss:') {
    throw new ConfigProblem(field, `has the scheme ${quoteValue(protocol)}; use redis:// or rediss:// (TLS)`);
  }
  if (url.search !== '' || url.hash !== '') {
    throw new ConfigProblem(field, 'must not have a query string or fragment; set those settings as options');
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (host === '') throw new ConfigProblem(field, 'has no host; use redis://host:port');
  const parts: UrlParts = { tls: protocol === 'rediss:', host };
  if (url.port !== '') parts.port = check.int(Number(url.port), field, LIMITS.port);
  try {
    if (url.username !== '') parts.username = decodeURIComponent(url.username);
    if (url.password !== '') parts.password = decodeURIComponent(url.password);
  } catch {
    throw new ConfigProblem(
      field,
      'has a malformed percent-encoding in the user name or password; encode % as %25',
    );
  }
  const path = url.pathname;
  if (path !== '' && path !== '/') {
    const m = /^\/(\d{1,2})\/?$/.exec(path);
    if (!m) throw new ConfigProblem(field, 'has an invalid database path; use /0 to /15 (or no path for 0)');
    parts.db = check.int(Number(m[1]), field, LIMITS.db);
  }
  return parts;
}

/** Parses `host:port` (`[v6]:port` for IPv6). @internal */
export function parseHostPort(text: string, field: string): RedisClusterNode {
  let host: string;
  let port: string | undefined;
  const bracket = /^\[([^\]]*)\](?::(.*))?$/.exec(text);
  if (bracket) {
    host = bracket[1];
    port = bracket[2];
    if (isIP(host) !== 6) {
      throw new ConfigProblem(field, 'has brackets around something that is not an IPv6 address');
    }
  } else {
    const colons = text.split(':').length - 1;
    if (colons > 1)
      throw new ConfigProblem(field, 'must be "host:port"; write IPv6 addresses as "[::1]:6379"');
    [host, port] = colons === 1 ? (text.split(':') as [string, string]) : [text, undefined];
  }
  if (port === undefined || !/^\d{1,5}$/.test(port)) {
    throw new ConfigProblem(field, 'must be "host:port" with a port from 1 to 65535');
  }
  return {
    host: checkHost(host, field) as string,
    port: check.int(Number(port), field, LIMITS.port) as number,
  };
}

/** A list of `{ host, port }` or `"host:port"` (Sentinels, Cluster seeds); at least one. @internal */
export function nodeList(value: unknown, field: string): RedisClusterNode[] {
  if (!Array.isArray(value)) {
    throw new ConfigProblem(
      field,
      `must be an array of addresses ({ host, port } or "host:port"); got ${describeValue(value)}`,
    );
  }
  if (value.length === 0) throw new ConfigProblem(field, 'must list at least one address');
  return value.map((item: unknown, i) => {
    const at = `${field}[${i}]`;
    if (typeof item === 'string') return parseHostPort(item.trim(), at);
    const node = check.object(item, at, '{ host, port } or "host:port"');
    check.keys(node, NODE_KEYS, at + '.', SEE_ALSO);
    if (node.host === undefined) throw new ConfigProblem(`${at}.host`, 'is required');
    if (node.port === undefined) throw new ConfigProblem(`${at}.port`, 'is required (1–65535)');
    return {
      host: checkHost(node.host, `${at}.host`) as string,
      port: check.int(node.port, `${at}.port`, LIMITS.port) as number,
    };
  });
}

/** A bare host name or IP address (brackets around IPv6 dropped). @internal */
export function checkHost(value: unknown, field: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') {
    throw new ConfigProblem(field, `must be a host name or IP address; got ${describeValue(value)}`);
  }
  const host = value.replace(/^\[(.*)\]$/, '$1');
  if (host === '') throw new ConfigProblem(field, 'must not be empty; set a host name or IP address');
  if (/[\s/@?#]/.test(host) || CONTROL_CHAR.test(host)) {
    throw new ConfigProblem(
      field,
      'must be a bare host name or IP address (no scheme, credentials, path or spaces)',
    );
  }
  if (host.includes(':') && isIP(host) !== 6) {
    throw new ConfigProblem(field, 'must not contain ":"; set the port with port');
  }
  return host;
}

/** `host:port`, IPv6 in brackets. @internal */
export function hostPort(node: RedisClusterNode): string {
  return `${node.host.includes(':') ? `[${node.host}]` : node.host}:${node.port}`;
}

/** Percent-encodes a URL part, even a string with lone surrogates. @internal */
export function encode(text: string): string {
  try {
    return encodeURIComponent(text);
  } catch {
    return encodeURIComponent(text.replace(/[\uD800-\uDFFF]/g, '\uFFFD'));
  }
}
