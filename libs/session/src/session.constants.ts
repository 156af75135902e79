/** Lib segment of every key (`<prefix>:session:…`), of metric names and of fallback reports. */
export const SESSION_LIB = 'session';

/** Defaults of the module options; every one is documented on `SessionModuleOptions`. */
export const SESSION_DEFAULTS = {
  client: 'default',
  idleTimeout: 1_800_000,
  absoluteTimeout: 43_200_000,
  touchInterval: 60_000,
  unavailableRetryAfter: 5_000,
  maxValueSize: 65_536,
  cookieName: 'rwsid',
  sameSite: 'lax',
  path: '/',
  csrfHeader: 'x-csrf-token',
} as const;

/** Bounds that catch unit mistakes (seconds vs. milliseconds). */
export const SESSION_LIMITS = {
  /** 400 days, the longest cookie lifetime browsers keep. */
  maxTimeout: 400 * 86_400_000,
  minKeyBytes: 32,
} as const;

/** Prefix browsers enforce as "Secure, Path=/, no Domain" (RFC 6265bis). */
export const HOST_PREFIX = '__Host-';

/** Methods that never change state: no CSRF token needed. */
export const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);

/** Symbol on the (raw) request under which the middleware leaves the request's session state. */
export const SESSION_STATE = Symbol.for('redwing.session.state');

/** Hash fields with a fixed meaning; data fields are `f:<keyed hash of the name>`. */
export const FIELD = {
  /** Encrypted metadata: user id, creation time, absolute deadline. */
  meta: '_m',
  /** Absolute deadline in ms since the epoch, in clear so the scripts can cap the TTL. */
  absolute: '_a',
} as const;
