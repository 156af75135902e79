const MASK = '***';
const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//;
// redis://, rediss://, redis+sentinel:// … up to the first character that cannot be part of a URL in prose.
const REDIS_URL_IN_TEXT = /rediss?(?:\+sentinel)?:\/\/[^\s"'<>`]*/gi;

/**
 * Hides the password of a connection URL: `redis://user:secret@h:6379/0` → `redis://user:***@h:6379/0`.
 *
 * The user info is taken to end at the *last* `@`, so a password with an unencoded `@`, `/` or `#` is
 * hidden whole (at worst more than the password is hidden). A URL without a password is returned
 * unchanged; input without a `scheme://` loses everything before its last `@`. Never throws.
 */
export function redactUrl(url: string): string {
  if (typeof url !== 'string') return '[not a string]';
  const at = url.lastIndexOf('@');
  if (at === -1) return url;
  const scheme = SCHEME.exec(url);
  const start = scheme ? scheme[0].length : 0;
  if (at < start) return url;
  const userinfo = url.slice(start, at);
  const colon = userinfo.indexOf(':');
  // `scheme://user@host`: a user name only, which is not a secret.
  if (colon === -1 && scheme) return url;
  const user = colon === -1 ? '' : userinfo.slice(0, colon);
  return `${url.slice(0, start)}${colon === -1 ? MASK : `${user}:${MASK}`}${url.slice(at)}`;
}

/**
 * Replaces every occurrence of each non-empty secret (also in its URL-encoded forms) with `***`, and
 * hides the password of every `redis://` / `rediss://` URL in the text. Use it on anything that may be
 * logged or returned. Never throws.
 */
export function redactText(text: string, secrets: readonly string[]): string {
  if (typeof text !== 'string') return '[not a string]';
  let out = text;
  const variants = new Set<string>();
  for (const secret of Array.isArray(secrets) ? secrets : []) {
    if (typeof secret !== 'string' || secret === '') continue;
    variants.add(secret);
    for (const encoded of encodings(secret)) variants.add(encoded);
  }
  if (variants.size > 0) {
    // One left-to-right pass, longest first, so a secret inside a longer one cannot leave a remainder.
    const pattern = [...variants]
      .sort((a, b) => b.length - a.length)
      .map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
      .join('|');
    out = out.replace(new RegExp(pattern, 'g'), MASK);
  }
  return out.replace(REDIS_URL_IN_TEXT, (match) => redactUrl(match));
}

/** How a secret may look once it has been put in a URL. */
function encodings(secret: string): string[] {
  const out: string[] = [];
  try {
    out.push(encodeURIComponent(secret));
  } catch {
    // lone surrogate: it cannot be percent-encoded, so it cannot appear encoded either
  }
  try {
    const url = new URL('redis://h');
    url.password = secret;
    out.push(url.password);
  } catch {}
  return out.filter((e) => e !== '' && e !== secret);
}
