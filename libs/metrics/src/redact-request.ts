import type { IncomingHttpHeaders } from 'node:http';

/** What replaces a redacted value. */
export const FILTERED = '[Filtered]';

/** Header and query parameter names whose values are secrets or personal data (client IPs included). */
const SENSITIVE_NAME =
  /auth|cookie|token|secret|passw|pwd|api[-_]?key|session|signature|credential|private|jwt|bearer|otp|code$|forwarded|real-ip|client-ip|connecting-ip/i;

/** True when a header or parameter of this name must not be reported. */
export function isSensitiveName(name: string): boolean {
  return SENSITIVE_NAME.test(name);
}

/**
 * Request headers safe to report: every value of a sensitive header (`Authorization`, `Cookie`,
 * `X-Api-Key`, anything naming a token, session or password, and client-IP headers such as
 * `X-Forwarded-For`) replaced by `[Filtered]`; arrays joined.
 */
export function redactHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    out[name] = isSensitiveName(name) ? FILTERED : Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

/** A query string (without `?`) with the values of sensitive parameters replaced by `[Filtered]`. */
export function redactQuery(query: string): string {
  if (!query) return '';
  return query
    .split('&')
    .filter(Boolean)
    .map((pair) => {
      const eq = pair.indexOf('=');
      const rawName = eq < 0 ? pair : pair.slice(0, eq);
      let name = rawName;
      try {
        name = decodeURIComponent(rawName.replace(/\+/g, ' '));
      } catch {
        // A malformed escape: judge the raw name.
      }
      return isSensitiveName(name) ? `${rawName}=${encodeURIComponent(FILTERED)}` : pair;
    })
    .join('&');
}

/** `url` split into its path and its redacted query. Never throws. */
export function splitUrl(url: string | undefined): { path: string; query: string } {
  const u = url ?? '/';
  const q = u.indexOf('?');
  const hash = u.indexOf('#');
  const end = hash >= 0 ? hash : u.length;
  return q < 0 || q > end
    ? { path: u.slice(0, end), query: '' }
    : { path: u.slice(0, q), query: redactQuery(u.slice(q + 1, end)) };
}
