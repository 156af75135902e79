import {
  Inject,
  Injectable,
  Logger,
  Optional,
  type OnApplicationShutdown,
  type OnModuleInit,
} from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import {
  defineScripts,
  isRedisUnavailable,
  REDWING_METRICS,
  RedisClientManager,
  RedisScriptError,
  RedisUnavailableError,
  runInSpan,
  type ManagedRedisClient,
  type MetricsRegistry,
  type ScriptCallers,
} from '@redwing/redis';
import { createSessionScript } from './scripts/create-session.script';
import { destroySessionScript } from './scripts/destroy-session.script';
import { destroyUserSessionsScript } from './scripts/destroy-user-sessions.script';
import { listUserSessionsScript } from './scripts/list-user-sessions.script';
import { loadSessionScript } from './scripts/load-session.script';
import { touchSessionScript } from './scripts/touch-session.script';
import { updateSessionScript } from './scripts/update-session.script';
import { idOfRecord, SessionCodec, type SessionMeta } from './session-codec';
import {
  rawRequest,
  SessionCookie,
  setCookieHeader,
  type AnyRequest,
  type AnyResponse,
} from './session-cookie';
import { SessionCrypto } from './session-crypto';
import { checkUserId, SessionKeys } from './session-keys';
import { SessionOrphans } from './session-orphans';
import { SessionRevocations } from './session-revocations';
import { resolveSessionConfig, type ResolvedSessionConfig } from './session.config';
import { SESSION_LIB, SESSION_STATE } from './session.constants';
import { SessionNotFoundError, SessionUnavailableError } from './session.errors';
import type {
  CreatedSession,
  CreateSessionInput,
  SessionData,
  SessionHandle,
  SessionRecord,
  SessionRevokedEvent,
  SessionSummary,
  SessionUser,
  RequestSessionState,
} from './session.interfaces';
import { SessionMetrics, type DestroyReason } from './session.metrics';
import { SESSION_MODULE_OPTIONS } from './session.module-definition';
import type { SessionModuleOptions } from './session.interfaces';

const SCRIPTS = {
  create: createSessionScript,
  load: loadSessionScript,
  update: updateSessionScript,
  touch: touchSessionScript,
  destroy: destroySessionScript,
  destroyUser: destroyUserSessionsScript,
  list: listUserSessionsScript,
};

type StatefulRequest = IncomingMessage & { [SESSION_STATE]?: RequestSessionState; user?: unknown };

/**
 * Encrypted server-side sessions on Redis: create, read (with rolling refresh), field-level race-safe updates,
 * regenerate (fixation protection), destroy, per-user listing and "log out everywhere" with cross-instance
 * revocation events. Redis unavailable: every operation throws `SessionUnavailableError` (HTTP 503); nothing
 * is ever kept or created in process memory.
 */
@Injectable()
export class SessionService implements OnModuleInit, OnApplicationShutdown {
  /** @internal */
  readonly config: ResolvedSessionConfig;
  /** @internal */
  readonly cookie: SessionCookie;
  private readonly crypto: SessionCrypto;
  private readonly codec: SessionCodec;
  private readonly metrics: SessionMetrics;
  private readonly client: ManagedRedisClient;
  private readonly scripts: ScriptCallers<typeof SCRIPTS>;
  private readonly revocations: SessionRevocations;
  private readonly keys: SessionKeys;
  private readonly logger = new Logger('SessionService');
  private warnedInsecure = false;
  private readonly orphans: SessionOrphans;

  constructor(
    @Inject(SESSION_MODULE_OPTIONS) options: SessionModuleOptions,
    manager: RedisClientManager,
    @Optional() @Inject(REDWING_METRICS) metrics?: MetricsRegistry,
  ) {
    this.config = resolveSessionConfig(options);
    this.crypto = new SessionCrypto(this.config.keys);
    this.codec = new SessionCodec(this.crypto, this.config.maxValueSize);
    this.cookie = new SessionCookie(this.config.cookie);
    this.metrics = new SessionMetrics(metrics, () => this.revocations.refused() !== undefined);
    this.client = manager.get(this.config.client);
    this.scripts = defineScripts(this.client.command, SCRIPTS);
    const base = manager.key(SESSION_LIB);
    this.keys = new SessionKeys(base, this.crypto);
    this.orphans = new SessionOrphans((key, index, ref) => this.scripts.destroy([key, index], [ref]));
    this.revocations = new SessionRevocations(this.client, `${base}:revoked`, this.logger);
    if (this.config.cookie.secure === false) {
      this.logger.warn(
        'cookie.secure is false: session cookies are sent over plain HTTP; use this only locally',
      );
    }
  }

  onModuleInit(): void {
    this.revocations.start();
  }

  async onApplicationShutdown(): Promise<void> {
    this.orphans.stop();
    await this.revocations.stop();
  }

  /**
   * Create a session (use `regenerate` or `login` when a user logs in).
   * @throws SessionUnavailableError when Redis is unavailable (nothing is created)
   * @throws SessionValueTooLargeError when a data value is over `maxValueSize`
   */
  async create<D extends SessionData = SessionData>(
    input: CreateSessionInput<D> = {},
  ): Promise<CreatedSession<D>> {
    const userId = checkUserId(input.userId);
    const data = (input.data ?? {}) as Record<string, unknown>;
    for (let attempt = 0; ; attempt++) {
      const id = this.crypto.newId(userId);
      const now = Date.now();
      const meta: SessionMeta = { u: userId, c: now, a: now + this.config.absoluteTimeout };
      const ttl = Math.min(this.config.idleTimeout, this.config.absoluteTimeout);
      const k = this.keys.of(id);
      const pairs = [...this.codec.meta(k.ref, meta), ...this.codec.fields(id, data).set];
      try {
        const cleaned = await this.scripts.create(
          [k.session, this.keys.index(k.tag, userId)],
          [now, this.config.idleTimeout, meta.a, k.ref, userId === null ? '0' : '1', k.prefix, ...pairs],
        );
        this.metrics.create();
        this.metrics.expired(cleaned);
        return { id, session: this.codec.fresh(id, k.ref, meta, data, ttl) as SessionRecord<D> };
      } catch (err) {
        if (err instanceof RedisScriptError && attempt < 2) continue;
        if (isRedisUnavailable(err) && !(err instanceof RedisUnavailableError)) {
          // Sent, but the reply never came: Redis may still apply it later. Nobody will ever receive this id;
          // delete it once Redis answers again so no orphan shows in the user's session list.
          this.orphans.add(k.session, this.keys.index(k.tag, userId), k.ref);
        }
        throw this.translate(err, 'create');
      }
    }
  }

  /**
   * Replace `current` (if any) by a new session with a new random id: call it on login and on any privilege
   * change (session fixation protection). The old session is destroyed first; with `keepData` its data fields
   * are copied.
   * @throws SessionUnavailableError when Redis is unavailable
   */
  async regenerate<D extends SessionData = SessionData>(
    current: SessionHandle | null | undefined,
    input: CreateSessionInput<D> & { keepData?: boolean } = {},
  ): Promise<CreatedSession<D>> {
    let data = input.data;
    if (current !== null && current !== undefined) {
      const old = typeof current === 'string' ? await this.peek(current, 'destroy') : current;
      if (old) {
        if (input.keepData) data = { ...(old.data as Partial<D>), ...input.data };
        await this.destroyLoaded(old, this.idOf(old), 'regenerate');
      }
    }
    return this.create<D>({ userId: input.userId, data });
  }

  /**
   * The session with this id (the cookie value or a WebSocket `auth.token`), or `null` when it does not exist,
   * expired, or fails authentication (tampered, retired key). Extends the idle expiry at most once per
   * `touchInterval`. Runs in a `session.load` span.
   * @throws SessionUnavailableError when Redis is unavailable (never `null`: an outage is not a logout)
   */
  get<D extends SessionData = SessionData>(id: string): Promise<SessionRecord<D> | null> {
    return runInSpan('session.load', undefined, async (span) => {
      const result = await this.load(id, true);
      span.setAttribute('session.outcome', result ? 'found' : 'none');
      if (result) span.setAttribute('session.ref', result.ref);
      return result as SessionRecord<D> | null;
    });
  }

  /**
   * The session a `Cookie` header names (for a WebSocket handshake), or `null`.
   * @throws SessionUnavailableError when Redis is unavailable
   */
  async getFromCookieHeader(cookieHeader: string | undefined): Promise<SessionRecord | null> {
    const id = this.cookie.readHeader(cookieHeader);
    return id === undefined ? null : this.get(id);
  }

  /**
   * Set data fields (`undefined` deletes one). Only the given fields are written, atomically per call, so
   * concurrent updates of different fields never lose each other.
   * @throws SessionNotFoundError when the session no longer exists
   * @throws SessionUnavailableError when Redis is unavailable
   * @throws SessionValueTooLargeError when a value is over `maxValueSize`
   */
  async update<D extends SessionData = SessionData>(
    session: SessionHandle,
    changes: { [K in keyof D]?: D[K] | undefined },
  ): Promise<void> {
    const id = this.idOf(session);
    const { set, del } = this.codec.fields(id, changes as Record<string, unknown>);
    const k = this.keys.of(id);
    let applied: 0 | 1;
    try {
      applied = await this.scripts.update([k.session], [Date.now(), set.length / 2, ...set, ...del]);
    } catch (err) {
      throw this.translate(err, 'update');
    }
    if (applied !== 1) throw new SessionNotFoundError(k.ref, 'update');
  }

  /**
   * Extend the idle expiry now (capped by the absolute deadline). Reads already do this once per
   * `touchInterval`; call it for activity that does not read the session.
   * @returns the new idle expiry, ms since the epoch
   * @throws SessionNotFoundError when the session no longer exists
   * @throws SessionUnavailableError when Redis is unavailable
   */
  async touch(session: SessionHandle): Promise<number> {
    const id = this.idOf(session);
    const k = this.keys.of(id);
    let ttl: number;
    // The script measures the TTL from this `now`: the expiry is `now + ttl` (never past the absolute
    // deadline), not the time the reply came back + ttl (later by the round trip).
    const now = Date.now();
    try {
      ttl = await this.scripts.touch([k.session], [now, this.config.idleTimeout]);
    } catch (err) {
      throw this.translate(err, 'touch');
    }
    if (ttl <= 0) throw new SessionNotFoundError(k.ref, 'touch');
    return now + ttl;
  }

  /**
   * Destroy a session (log out). Emits a revocation event on every instance when it had a user.
   * @returns whether it existed
   * @throws SessionUnavailableError when Redis is unavailable
   */
  async destroy(session: SessionHandle): Promise<boolean> {
    const id = this.idOf(session);
    const record = typeof session === 'string' ? await this.peek(id, 'destroy') : session;
    if (!record) return false;
    return this.destroyLoaded(record, id, 'logout');
  }

  /**
   * The live sessions of a user, oldest deadline first. Cleans expired entries from the user's index.
   * @throws SessionUnavailableError when Redis is unavailable
   */
  async listForUser(userId: string): Promise<SessionSummary[]> {
    checkUserId(userId);
    const tag = this.crypto.userTag(userId);
    let reply: [number, Array<string | number>];
    try {
      reply = await this.scripts.list([this.keys.index(tag, userId)], [this.keys.prefix(tag), Date.now()]);
    } catch (err) {
      throw this.translate(err, 'list');
    }
    const [cleaned, flat] = reply;
    this.metrics.expired(cleaned);
    const out: SessionSummary[] = [];
    const now = Date.now();
    for (let i = 0; i < flat.length; i += 3) {
      const ref = String(flat[i]);
      const pttl = Number(flat[i + 1]);
      const meta = this.codec.readMeta(ref, String(flat[i + 2]));
      if (typeof meta === 'string' || meta.u !== userId) continue;
      out.push({
        ref,
        createdAt: meta.c,
        expiresAt: Math.min(now + pttl, meta.a),
        absoluteExpiresAt: meta.a,
      });
    }
    return out;
  }

  /**
   * "Log out everywhere": destroy every session of a user (except `options.except`, e.g. the current one) and
   * tell every instance (`onRevoked`).
   * @returns the number of sessions destroyed
   * @throws SessionUnavailableError when Redis is unavailable
   */
  async destroyAllForUser(userId: string, options: { except?: SessionHandle } = {}): Promise<number> {
    checkUserId(userId);
    const tag = this.crypto.userTag(userId);
    const except = options.except === undefined ? '' : this.keys.of(this.idOf(options.except)).ref;
    let refs: string[];
    try {
      refs = await this.scripts.destroyUser([this.keys.index(tag, userId)], [this.keys.prefix(tag), except]);
    } catch (err) {
      throw this.translate(err, 'destroyAll');
    }
    this.metrics.destroyed('logout_all', refs.length);
    await this.revocations.emit({ userId, refs: except ? refs.map(String) : 'all' });
    return refs.length;
  }

  /**
   * Listen for destroyed sessions on every instance (`destroy`, `regenerate`, `destroyAllForUser`), within
   * milliseconds over Redis pub/sub. Sessions that simply expire emit nothing.
   * @returns a function that removes the listener
   */
  onRevoked(listener: (event: SessionRevokedEvent) => void): () => void {
    return this.revocations.on(listener);
  }

  /** Resolves once this instance receives revocation events from the others (for tests and readiness). */
  revocationsReady(): Promise<void> {
    return this.revocations.ready();
  }

  /** The CSRF token of a session: send it to the client, which returns it in the CSRF header. Secret. */
  csrfToken(session: SessionHandle): string {
    return this.crypto.csrfToken(this.idOf(session));
  }

  /** Whether `token` is the CSRF token of `session` (constant-time; any key of the ring). */
  verifyCsrf(session: SessionHandle, token: unknown): boolean {
    return this.crypto.verifyCsrf(this.idOf(session), token);
  }

  /** The non-secret reference of a session id (what `SessionRecord.ref` holds). */
  refOf(id: string): string {
    return this.crypto.ref(id);
  }

  /**
   * The session state of an HTTP request: what the middleware found, or (when it did not run) read now from
   * the cookie. Sets `request.user = { id }` for a session with a user.
   * @internal used by the middleware, the guard and the decorators
   */
  async resolveRequest(req: AnyRequest, res?: AnyResponse): Promise<RequestSessionState> {
    const raw = rawRequest(req) as StatefulRequest;
    const known = raw[SESSION_STATE];
    if (known) return known;
    const state: RequestSessionState = { status: 'none' };
    raw[SESSION_STATE] = state;
    const id = this.cookie.read(raw);
    if (id === undefined) return state;
    state.id = id;
    try {
      const session = await this.get(id);
      if (session) {
        state.status = 'ok';
        state.session = session;
        if (session.userId !== null) raw.user = { id: session.userId } satisfies SessionUser;
      } else {
        state.id = undefined;
        if (res) setCookieHeader(res, this.cookie.clear(raw));
      }
    } catch (err) {
      if (!(err instanceof SessionUnavailableError)) throw err;
      state.status = 'unavailable';
      state.error = err;
    }
    return state;
  }

  /**
   * Log a user in on an HTTP request: regenerate the request's session (fixation protection) with `userId`,
   * set the session cookie on `res`, and set `request.user`.
   * @returns the new session and its CSRF token
   * @throws SessionUnavailableError when Redis is unavailable (no cookie is set, no session exists)
   */
  async login<D extends SessionData = SessionData>(
    req: AnyRequest,
    res: AnyResponse,
    input: CreateSessionInput<D> & { keepData?: boolean },
  ): Promise<{ session: SessionRecord<D>; csrfToken: string }> {
    const raw = rawRequest(req) as StatefulRequest;
    const state = raw[SESSION_STATE];
    const current = state?.session ?? state?.id ?? this.cookie.read(raw) ?? null;
    const created = await this.regenerate<D>(current, input);
    this.warnIfInsecure(raw);
    setCookieHeader(res, this.cookie.serialize(raw, created.id, this.config.absoluteTimeout));
    raw[SESSION_STATE] = { status: 'ok', session: created.session, id: created.id };
    raw.user =
      created.session.userId === null ? undefined : ({ id: created.session.userId } satisfies SessionUser);
    return { session: created.session, csrfToken: this.crypto.csrfToken(created.id) };
  }

  /**
   * Log out on an HTTP request: destroy its session (or, with `everywhere`, every session of its user) and
   * clear the cookie.
   * @returns the number of sessions destroyed
   * @throws SessionUnavailableError when Redis is unavailable
   */
  async logout(req: AnyRequest, res: AnyResponse, options: { everywhere?: boolean } = {}): Promise<number> {
    const raw = rawRequest(req) as StatefulRequest;
    const state = await this.resolveRequest(raw, res);
    if (state.status === 'unavailable') throw state.error!;
    let destroyed = 0;
    if (state.session) {
      if (options.everywhere && state.session.userId !== null) {
        destroyed = await this.destroyAllForUser(state.session.userId);
      } else {
        destroyed = (await this.destroy(state.session)) ? 1 : 0;
      }
    }
    setCookieHeader(res, this.cookie.clear(raw));
    raw[SESSION_STATE] = { status: 'none' };
    raw.user = undefined;
    return destroyed;
  }

  private async load(id: string, touch: boolean): Promise<SessionRecord | null> {
    if (!this.crypto.isWellFormed(id)) {
      this.metrics.rejected('malformed');
      return null;
    }
    const k = this.keys.of(id);
    let reply: [number, number?, ...string[]];
    try {
      reply = await this.scripts.load(
        [k.session],
        [Date.now(), this.config.idleTimeout, this.config.touchInterval, touch ? '1' : '0'],
      );
    } catch (err) {
      throw this.translate(err, 'load');
    }
    const status = reply[0];
    if (status !== 1) {
      if (status === 2) this.metrics.expired();
      this.metrics.rejected(status === 0 ? 'unknown' : status === 2 ? 'expired' : 'tamper');
      return null;
    }
    const decoded = this.codec.decode(id, k.ref, Number(reply[1]), reply.slice(2) as string[]);
    if (typeof decoded === 'string') {
      if (decoded === 'expired') this.metrics.expired();
      this.metrics.rejected(decoded);
      return null;
    }
    return decoded;
  }

  /** Load without touching, translating an outage for `operation`. */
  private async peek(id: string, operation: string): Promise<SessionRecord | null> {
    try {
      return await this.load(id, false);
    } catch (err) {
      if (err instanceof SessionUnavailableError && err.operation !== operation) {
        throw new SessionUnavailableError(operation, err.retryAfter, { cause: err.cause });
      }
      throw err;
    }
  }

  private async destroyLoaded(record: SessionRecord, id: string, reason: DestroyReason): Promise<boolean> {
    const k = this.keys.of(id);
    let deleted: 0 | 1;
    try {
      deleted = await this.scripts.destroy([k.session, this.keys.index(k.tag, record.userId)], [k.ref]);
    } catch (err) {
      throw this.translate(err, 'destroy');
    }
    if (deleted === 1) this.metrics.destroyed(reason);
    if (record.userId !== null) await this.revocations.emit({ userId: record.userId, refs: [k.ref] });
    return deleted === 1;
  }

  private idOf(session: SessionHandle): string {
    if (typeof session === 'string') return session;
    const id = idOfRecord(session);
    if (id === undefined) {
      throw new TypeError('SessionService: pass a session id or a SessionRecord loaded by this service');
    }
    return id;
  }

  private translate(err: unknown, operation: string): unknown {
    if (err instanceof SessionUnavailableError) return err;
    if (isRedisUnavailable(err)) {
      this.metrics.unavailable(operation);
      return new SessionUnavailableError(operation, this.config.unavailableRetryAfter, { cause: err });
    }
    return err;
  }

  private warnIfInsecure(req: IncomingMessage): void {
    if (this.warnedInsecure || this.config.cookie.secure !== 'auto' || this.cookie.isSecure(req)) return;
    this.warnedInsecure = true;
    this.logger.warn(
      'Session cookie sent without Secure (and without the __Host- prefix): the request came over plain HTTP on ' +
        'loopback. Serve over HTTPS anywhere else; cookie.secure: true forces Secure.',
    );
  }
}
