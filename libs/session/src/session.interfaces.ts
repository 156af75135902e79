import type { SessionUnavailableError } from './session.errors';

/** Values a session field can hold: anything `JSON.stringify` round-trips. */
export type SessionValue =
  string | number | boolean | null | SessionValue[] | { [key: string]: SessionValue };

/** The data fields of a session by name. */
export type SessionData = Record<string, SessionValue>;

/** Options of the session cookie. */
export interface SessionCookieOptions {
  /**
   * Base name of the cookie. It is sent as `__Host-<name>` whenever it is `Secure` with `Path=/` and no
   * `domain` (the browser then refuses it from subdomains and over plain HTTP), else as `<name>`.
   * @default 'rwsid'
   */
  name?: string;
  /**
   * `true`: always `Secure`. `'auto'`: `Secure` except on requests that arrive over plain HTTP from and to a
   * loopback address with no proxy headers (local development and tests), where it is sent without `Secure`
   * (and without the `__Host-` prefix) and a warning is logged once. `false`: never (logged as a warning).
   * @default 'auto'
   */
  secure?: boolean | 'auto';
  /** @default 'lax' */
  sameSite?: 'lax' | 'strict' | 'none';
  /** Cookie `Domain`; setting it gives up the `__Host-` prefix. @default none (host-only) */
  domain?: string;
  /** Cookie `Path`; anything but `/` gives up the `__Host-` prefix. @default '/' */
  path?: string;
}

/** CSRF protection of cookie-authenticated requests. */
export interface SessionCsrfOptions {
  /**
   * Refuse (403) unsafe requests (not GET/HEAD/OPTIONS/TRACE) that carry a live session cookie without the
   * session's CSRF token in `header`.
   * @default true
   */
  enabled?: boolean;
  /** Request header carrying the token (case-insensitive). @default 'x-csrf-token' */
  header?: string;
  /**
   * Paths (exact, without the query string) exempt from the check, e.g. `['/auth/login']`: a login route
   * authenticates with the credentials in its body, not with the cookie, and replaces the session it carries.
   * @default []
   */
  exempt?: string[];
}

/** Options of `SessionModule.forRoot()`. Durations are milliseconds. */
export interface SessionModuleOptions {
  /**
   * The key ring: secrets of at least 32 bytes (strings or Buffers), newest first. The first encrypts new
   * values and signs CSRF tokens; every key decrypts. Rotate by adding a key in front; retire the old one
   * after `absoluteTimeout` (sessions it encrypted are rejected as `unknown_key` once it is gone).
   * Environment: `SESSION_KEYS` (comma-separated). `undefined` entries are accepted by the type so
   * `keys: [process.env.SESSION_KEY]` compiles, and refused at start-up naming the entry.
   */
  keys?: ReadonlyArray<string | Buffer | undefined>;
  /** Name of the `@redwing/redis` client that stores sessions. @default 'default' */
  client?: string;
  /** A session unused this long expires (sliding). @default 1_800_000 (30 min) */
  idleTimeout?: number;
  /** A session expires this long after creation, however active. @default 43_200_000 (12 h) */
  absoluteTimeout?: number;
  /**
   * Rolling refresh: a read extends the idle expiry only when it was last extended at least this long ago, so
   * most reads write nothing. Must be smaller than `idleTimeout`. @default 60_000
   */
  touchInterval?: number;
  /** `Retry-After` of the 503 answered while Redis is unavailable, ms. @default 5_000 */
  unavailableRetryAfter?: number;
  /** Largest serialized size of one field value, bytes. @default 65_536 */
  maxValueSize?: number;
  cookie?: SessionCookieOptions;
  csrf?: SessionCsrfOptions;
  /**
   * Read `SESSION_*` environment variables under the explicit options (see the README table).
   * @default true
   */
  useEnv?: boolean;
  /** The environment to read. @default process.env */
  env?: Readonly<Record<string, string | undefined>>;
}

/**
 * A loaded session. Safe to keep in memory and to log: it holds no secret — never the session id or the CSRF
 * token (ask `SessionService.csrfToken(session)` for that) — only the non-secret `ref`.
 */
export interface SessionRecord<D extends SessionData = SessionData> {
  /** Stable, non-secret reference of this session (derived one-way from its id); use it in logs and lists. */
  readonly ref: string;
  /** The user the session belongs to; `null` for an anonymous session. */
  readonly userId: string | null;
  /** The data fields, decrypted. */
  readonly data: Readonly<Partial<D>>;
  /** ms since the epoch. */
  readonly createdAt: number;
  /** When the session expires if unused, ms since the epoch (never after `absoluteExpiresAt`). */
  readonly expiresAt: number;
  /** When the session expires however active, ms since the epoch. */
  readonly absoluteExpiresAt: number;
}

/** One entry of `SessionService.listForUser()`. */
export interface SessionSummary {
  ref: string;
  createdAt: number;
  expiresAt: number;
  absoluteExpiresAt: number;
}

/** What `create`, `regenerate` and `login` return. */
export interface CreatedSession<D extends SessionData = SessionData> {
  /** The secret session id (the cookie value): give it to the client, never log it. */
  id: string;
  session: SessionRecord<D>;
}

/** Input of `create`, `regenerate` and `login`. */
export interface CreateSessionInput<D extends SessionData = SessionData> {
  /** The authenticated user; `null`/absent for an anonymous session. 1–256 characters. */
  userId?: string | null;
  /** Initial data fields. */
  data?: Partial<D>;
}

/** A session as the service methods take it: its id, or a record loaded by this service. */
export type SessionHandle = string | SessionRecord;

/** What `onRevoked` listeners receive: the user, and the refs of the destroyed sessions or `'all'`. */
export interface SessionRevokedEvent {
  userId: string;
  refs: string[] | 'all';
}

/** Why a presented session id was refused (label of `redwing_session_rejected_total`). */
export type SessionRejectReason = 'malformed' | 'unknown' | 'expired' | 'tamper' | 'unknown_key';

/** The user `request.user` is set to from a session. */
export interface SessionUser {
  id: string;
}

/**
 * What the session middleware leaves on the (raw) request: `ok` with the session, `none` (no cookie, or one
 * that names no live session), or `unavailable` (Redis could not be asked; handlers that need the session
 * answer 503, anonymous handlers run).
 */
export interface RequestSessionState {
  status: 'ok' | 'none' | 'unavailable';
  session?: SessionRecord;
  /** @internal the secret id; never logged */
  id?: string;
  error?: SessionUnavailableError;
}
