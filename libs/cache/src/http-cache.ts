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

/** `path?query` with the query parameters sorted, so `?b=2&a=1` and `?a=1&b=2` share one entry. */
export function normalizeUrl(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const params = new URLSearchParams(url.slice(q + 1));
  params.sort();
  const query = params.toString();
  return query ? `${url.slice(0, q)}?${query}` : url.slice(0, q);
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

/** The key of a route entry: method, normalized URL, and the user when per-user. */
export function routeKey(method: string, url: string, user: string | undefined): string {
  const base = `http:${method}:${normalizeUrl(url)}`;
  return user === undefined ? base : `${base}#u:${user.length > 64 ? hash(user) : user}`;
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

function hash(text: string): string {
  return createHash('sha1').update(text).digest('base64url');
}
