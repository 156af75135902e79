import type { IncomingMessage, ServerResponse } from 'node:http';
import { isLoopbackHost } from '@redwing/redis';
import { HOST_PREFIX } from './session.constants';
import type { ResolvedSessionConfig } from './session.config';

/** A Node, Express or Fastify request (Fastify's wraps the Node one in `raw`). */
export type AnyRequest = IncomingMessage | { raw: IncomingMessage };
/** A Node, Express or Fastify response (Fastify's reply wraps the Node one in `raw`). */
export type AnyResponse = ServerResponse | { raw: ServerResponse };

/** The Node request under an adapter's request object. */
export function rawRequest(req: AnyRequest): IncomingMessage {
  return ((req as { raw?: IncomingMessage }).raw ?? req) as IncomingMessage;
}

/** The Node response under an adapter's reply object. */
export function rawResponse(res: AnyResponse): ServerResponse {
  return ((res as { raw?: ServerResponse }).raw ?? res) as ServerResponse;
}

const PROXY_HEADERS = ['forwarded', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-real-ip'];

/**
 * Whether a request came over plain HTTP, from a loopback address, to a loopback host name, without any proxy
 * header: local development or a test. A TLS-terminating proxy on the same machine adds forwarding headers or
 * a public `Host`, so production traffic through one never qualifies.
 */
export function isPlainLoopback(req: IncomingMessage): boolean {
  if ((req.socket as { encrypted?: boolean } | undefined)?.encrypted) return false;
  const remote = req.socket?.remoteAddress;
  if (!remote || !loopback(remote.replace(/^::ffff:/, ''))) return false;
  const host = req.headers.host?.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  if (!host || !loopback(host)) return false;
  return !PROXY_HEADERS.some((h) => req.headers[h] !== undefined);
}

/** `isLoopbackHost` answers for the few host names a process sees (it parses a URL), bounded. */
const loopbackAnswers = new Map<string, boolean>();

function loopback(host: string): boolean {
  let answer = loopbackAnswers.get(host);
  if (answer === undefined) {
    answer = isLoopbackHost(host);
    if (loopbackAnswers.size >= 256) loopbackAnswers.clear();
    loopbackAnswers.set(host, answer);
  }
  return answer;
}

/** Cookie names and attributes of the session cookie, decided per request. */
export class SessionCookie {
  /** Name of the `Secure` cookie: `__Host-<name>` when the attributes allow the prefix. */
  readonly secureName: string;
  /** Name of the cookie sent without `Secure` (plain-HTTP loopback only). */
  readonly plainName: string;
  /** Set once a plain-HTTP loopback request was answered without `Secure`. */
  plainSeen = false;

  constructor(private readonly config: ResolvedSessionConfig['cookie']) {
    const prefixable = config.path === '/' && config.domain === undefined;
    this.secureName = prefixable ? HOST_PREFIX + config.name : config.name;
    this.plainName = config.name;
  }

  /** Whether the cookie of this request is `Secure` (see `SessionCookieOptions.secure`). */
  isSecure(req: IncomingMessage): boolean {
    if (this.config.secure !== 'auto') return this.config.secure;
    return !isPlainLoopback(req);
  }

  /** The session id a request's cookie carries (the name its transport allows), or `undefined`. */
  read(req: IncomingMessage): string | undefined {
    const secure = this.isSecure(req);
    return readCookie(req.headers.cookie, secure ? this.secureName : this.plainName);
  }

  /**
   * The id in a `Cookie` header without a request (a WebSocket handshake): the `Secure` cookie, else the plain
   * one when this process has answered plain-HTTP loopback requests or `secure` is `false`.
   */
  readHeader(header: string | undefined): string | undefined {
    const id = readCookie(header, this.secureName);
    if (id !== undefined || this.secureName === this.plainName) return id;
    return this.plainSeen || this.config.secure === false ? readCookie(header, this.plainName) : undefined;
  }

  /** `Set-Cookie` value carrying `id` for `maxAge` ms. */
  serialize(req: IncomingMessage, id: string, maxAge: number): string {
    const secure = this.isSecure(req);
    if (!secure) this.plainSeen = true;
    const parts = [
      `${secure ? this.secureName : this.plainName}=${id}`,
      `Path=${this.config.path}`,
      `Max-Age=${Math.max(0, Math.floor(maxAge / 1_000))}`,
      'HttpOnly',
      `SameSite=${this.config.sameSite[0].toUpperCase()}${this.config.sameSite.slice(1)}`,
    ];
    if (this.config.domain) parts.push(`Domain=${this.config.domain}`);
    if (secure) parts.push('Secure');
    return parts.join('; ');
  }

  /** `Set-Cookie` value that deletes the cookie. */
  clear(req: IncomingMessage): string {
    return this.serialize(req, '', 0).replace(
      'Max-Age=0',
      'Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT',
    );
  }
}

/** The value of cookie `name` in a `Cookie` header (first occurrence), without decoding. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  let at = 0;
  while (at < header.length) {
    const end = header.indexOf(';', at);
    const stop = end === -1 ? header.length : end;
    const eq = header.indexOf('=', at);
    if (eq !== -1 && eq < stop && header.slice(at, eq).trim() === name) {
      let value = header.slice(eq + 1, stop).trim();
      if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
      return value;
    }
    at = stop + 1;
  }
  return undefined;
}

/** Add a `Set-Cookie` header, replacing one this lib already added for the same cookie name. */
export function setCookieHeader(res: AnyResponse, value: string): void {
  const raw = rawResponse(res);
  const name = value.slice(0, value.indexOf('='));
  const current = raw.getHeader('set-cookie');
  const list = current === undefined ? [] : Array.isArray(current) ? current : [String(current)];
  raw.setHeader('set-cookie', [...list.filter((c) => !c.startsWith(`${name}=`)), value]);
}
