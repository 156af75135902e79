import { createHash } from 'node:crypto';

/** What a request's `Cache-Control` asks of the cache. */
export interface RequestDirectives {
  /** Neither read nor store (`no-store`). */
  noStore: boolean;
  /** Do not answer from the cache, but store the fresh response (`no-cache`, `max-age=0`). */
  noCache: boolean;
}

const NONE: RequestDirectives = { noStore: false, noCache: false };

/** Parses a request `Cache-Control` header (also given as an array). */
export function requestDirectives(header: string | string[] | undefined): RequestDirectives {
  if (header === undefined) return NONE;
  const text = (Array.isArray(header) ? header.join(',') : header).toLowerCase();
  if (text === '') return NONE;
  const noStore = /(?:^|[\s,])no-store(?:$|[\s,])/.test(text);
  const noCache =
    noStore ||
    /(?:^|[\s,])no-cache(?:$|[\s,=])/.test(text) ||
    /(?:^|[\s,])max-age\s*=\s*0(?:$|[\s,])/.test(text);
  return { noStore, noCache };
}

/**
 * Whether a response's own `Cache-Control` forbids storing it here: `no-store` always, `private` when the
 * entry would be shared between users.
 */
export function responseForbidsStore(header: unknown, shared: boolean): boolean {
  if (header === undefined || header === null) return false;
  const text = String(Array.isArray(header) ? header.join(',') : header).toLowerCase();
  return (
    /(?:^|[\s,])no-store(?:$|[\s,])/.test(text) || (shared && /(?:^|[\s,])private(?:$|[\s,=])/.test(text))
  );
}

/**
 * The identity per-user entries are keyed by: `undefined` when the request has no user, `null` when it has
 * one that cannot be told apart from others (then nothing is cached — sharing it could leak).
 */
export function userIdentity(
  request: { user?: unknown; raw?: { user?: unknown } },
  custom?: (request: any) => string | number | undefined | null,
): string | null | undefined {
  if (custom) {
    const id = custom(request);
    return id === undefined || id === null ? undefined : String(id);
  }
  const user = request.user ?? request.raw?.user;
  if (user === undefined || user === null || user === false) return undefined;
  if (typeof user === 'string' || typeof user === 'number') return String(user);
  if (typeof user !== 'object') return null;
  const u = user as Record<string, unknown>;
  for (const field of ['id', 'sub', 'userId']) {
    const v = u[field];
    if (typeof v === 'string' || typeof v === 'number') return String(v);
  }
  return null;
}

/** First characters of every route entry's key; `CacheMethodExplorer` never caches a method key that starts with `~`. */
export const ROUTE_KEY_PREFIX = '~http:';

/** What a route entry's key is made of. */
export interface RouteKeyInput {
  /** Request method (`GET`; `@CachePut` stores under `GET`). */
  method: string;
  /** The request URL as received (`path?query`). */
  url: string;
  /** Query allow-list: only these parameters (sorted) are part of the key; `undefined` = every parameter. */
  query?: readonly string[];
  /** The route's own key (`@Cacheable({ key })`); replaces method, path and query. */
  custom?: string;
  /** The user of a per-user entry. */
  user?: string;
  /** Values of the request headers the route varies on (`@Cacheable({ vary })`), by lower-case name. */
  vary?: ReadonlyArray<readonly [string, string | undefined]>;
}

/**
 * The key of a route entry. Every request-controlled part (path, query, custom key, user, varied header
 * values) is length-prefixed (`<length>:<text>`) behind a one-letter field tag, so the key decodes back into
 * exactly one set of parts: no path, query, custom key or user id can spell another user's or another
 * scope's key (a `#u:alice` in a URL is just part of the path), also once Redis has stored it as UTF-8 (a
 * part with a lone surrogate is escaped, see `field`). Route keys start with
 * {@link ROUTE_KEY_PREFIX}, a family no method key uses.
 */
export function routeEntryKey(input: RouteKeyInput): string {
  let key = ROUTE_KEY_PREFIX;
  if (input.custom !== undefined) {
    // String(): a key function typed loosely may hand back a number or undefined.
    key += 'k' + field(String(input.custom));
  } else {
    const { path, query } = splitUrl(input.url, input.query);
    key += 'r' + field(input.method) + field(path) + field(query);
  }
  if (input.user !== undefined) {
    key += input.user.length > 64 ? 'U' + field(digest(field(input.user))) : 'u' + field(input.user);
  }
  const vary = input.vary !== undefined && input.vary.length > 0 ? input.vary : undefined;
  if (vary !== undefined) {
    key += 'v' + field(digest(JSON.stringify(vary.map(([name, value]) => [name, value ?? null]))));
  }
  return input.user === undefined && vary === undefined ? key + 'g' : key;
}

/** A single query parameter that URLSearchParams would give back unchanged (`*-._` and alphanumerics). */
const SIMPLE_QUERY = /^[\w.*-]+=[\w.*-]*$/;

/** The path and the normalized query (parameters sorted; with an allow-list, only those parameters). */
export function splitUrl(url: string, allow?: readonly string[]): { path: string; query: string } {
  const q = url.indexOf('?');
  if (q < 0) return { path: url, query: '' };
  const path = url.slice(0, q);
  if (allow !== undefined && allow.length === 0) return { path, query: '' };
  const raw = url.slice(q + 1);
  // One `name=value` of characters the form encoding keeps as they are: already normalized (no parse).
  if (allow === undefined && SIMPLE_QUERY.test(raw)) return { path, query: raw };
  const params = new URLSearchParams(raw);
  if (allow !== undefined)
    for (const name of [...new Set(params.keys())]) if (!allow.includes(name)) params.delete(name);
  params.sort();
  return { path, query: params.toString() };
}

/** The credential headers a request carries, of `names` (lower-case). */
export function credentialsOf(
  headers: Record<string, string | string[] | undefined>,
  names: readonly string[],
): string[] {
  return names.filter((name) => headers[name] !== undefined && headers[name] !== '');
}

/** A lone surrogate (a paired one is a single astral code point in a `u` regex). */
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * One self-delimiting field: `<length>:<text>`. Redis stores keys as UTF-8, which turns every lone surrogate
 * into U+FFFD, so `a\uD800` and `a\uFFFD` would be one key there: a text with a lone surrogate is written as
 * `!` and the field of its JSON string instead (JSON escapes them as `\udXXX`), which no plain field starts with.
 */
function field(text: string): string {
  if (LONE_SURROGATE.test(text)) return '!' + field(JSON.stringify(text));
  return `${text.length}:${text}`;
}

function digest(text: string): string {
  return createHash('sha256').update(text).digest('base64url');
}

/** A strong ETag of a body: 16 bytes of its SHA-1. */
export function computeEtag(body: string): string {
  return `"${createHash('sha1').update(body).digest('base64url').slice(0, 22)}"`;
}

/** Whether `If-None-Match` matches `etag` (weak comparison, lists and `*` supported). */
export function etagMatches(ifNoneMatch: string | string[] | undefined, etag: string): boolean {
  if (ifNoneMatch === undefined) return false;
  const text = Array.isArray(ifNoneMatch) ? ifNoneMatch.join(',') : ifNoneMatch;
  if (text.trim() === '*') return true;
  const want = stripWeak(etag);
  return text.split(',').some((t) => stripWeak(t.trim()) === want);
}

function stripWeak(tag: string): string {
  return tag.startsWith('W/') ? tag.slice(2) : tag;
}
