import { Logger } from '@nestjs/common';
import { performance } from 'node:perf_hooks';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { Admission, CircuitBreaker, type BreakerTransition } from './circuit-breaker';
import { CLUSTER_NODE_TIMEOUT_MARGIN, CommandHook, type ClientCounters } from './command-hook';
import { ConnectionPool, type PoolStats } from './connection-pool';
import { FallbackStore, type FallbackStoreOptions } from './fallback-store';
import { HealthMonitor, type HealthSnapshot } from './health-monitor';
import {
  applyIoredisCompat,
  guardStreamErrors,
  handleRestoreRejections,
  holdSubscribesDuringHandshake,
} from './ioredis-compat';
import { redactText } from './redact';
import type { ResolvedRedisClientConfig } from './redis.config';
import { RedisUnavailableError } from './redis.errors';
import type { RedisEvents } from './redis-events';
import { activeBudget, spendBudget } from './request-budget';
import type {
  BreakerState,
  RedisClientHealth,
  RedisConnectionState,
  RedisTopology,
} from './redis.interfaces';

/** An ioredis connection of either topology. */
export type RedisConnection = Redis | Cluster;

export type { ClientCounters } from './command-hook';

/**
 * One named Redis client: the shared command connection (breaker-protected, fail-fast), on-demand
 * subscriber and blocking connections, a pool of dedicated connections, a health monitor, and the
 * client's share of the event surface.
 */
export class ManagedRedisClient {
  readonly name: string;
  /** Redacted URL, safe to log and to show. */
  readonly url: string;
  readonly topology: RedisTopology;
  /**
   * The shared command connection. Every command on it goes through the circuit breaker and the command
   * timeout. ioredis multiplexes, so share it; do not use it for blocking commands or WATCH.
   */
  readonly command: RedisConnection;
  readonly breaker: CircuitBreaker;

  /** The shared command connection: the same object as {@link ManagedRedisClient.command}. */
  get connection(): RedisConnection {
    return this.command;
  }

  private readonly logger: Logger;
  private readonly monitor: HealthMonitor;
  private readonly pool: ConnectionPool<RedisConnection>;
  private readonly owned = new Set<RedisConnection>();
  private readonly counters: ClientCounters = {
    commands: 0,
    failures: 0,
    timeouts: 0,
    replyErrors: 0,
    rejected: 0,
    fallbacks: 0,
    stuckReconnects: 0,
  };
  /** Failed health checks in a row while the command connection was open (see `reopenIfStuck`). */
  private stuckChecks = 0;
  /** `bytesRead` of the command connection's socket at the last health check. */
  private stuckBytesRead = -1;
  private state: RedisConnectionState = 'connecting';
  private status: 'up' | 'degraded' = 'degraded';
  private lastConnectionError: string | null = null;
  private subscriberConn?: RedisConnection;
  private readonly isCluster: boolean;
  /** Admission, tracking and settling of every command on `command` (see command-hook.ts). */
  private readonly hook: CommandHook;
  private closing = false;

  constructor(
    readonly config: ResolvedRedisClientConfig,
    private readonly events: RedisEvents,
  ) {
    this.name = config.name;
    this.url = config.displayUrl;
    this.topology = config.topology;
    this.logger = new Logger(`Redis:${config.name}`);
    this.breaker = new CircuitBreaker(
      config.breaker,
      (t) => this.onBreakerTransition(t),
      () => performance.now(),
    );
    this.isCluster = !!config.cluster;
    // The hook times out the commands of this connection itself (command-hook.ts): ioredis's own timer stays
    // off here, and on Cluster nodes it is only a backstop for the commands the hook never sees.
    this.command = this.createConnection({
      commandTimeout: config.cluster ? config.commandTimeout + CLUSTER_NODE_TIMEOUT_MARGIN : undefined,
    });
    this.hook = new CommandHook(this.command, {
      client: config.name,
      breaker: this.breaker,
      events,
      counters: this.counters,
      commandTimeout: config.commandTimeout,
      maxRetries: config.maxRetries,
    });
    this.watchState(this.command);
    this.monitor = new HealthMonitor(
      config.healthCheck,
      () => this.pingBypassingBreaker(),
      (s) => this.onHealthCheck(s),
      (err) => this.describe(err),
    );
    this.pool = new ConnectionPool<RedisConnection>(config.name, config.pool, {
      create: () => this.openDedicated('pool'),
      destroy: (conn) => this.closeConnection(conn),
    });
  }

  /** Start connecting in the background and start the health monitor. Never throws, never waits. */
  start(): void {
    if (this.config.insecureRemote) {
      this.audit(`connects to ${this.url} without TLS; use rediss:// for any host that is not on loopback`);
    }
    if (this.config.redisOptions.tls && this.config.redisOptions.tls.rejectUnauthorized === false) {
      this.audit('TLS certificate verification is off (tls.rejectUnauthorized: false)');
    }
    this.command.connect().catch(() => undefined);
    this.monitor.start();
    this.pool.start();
  }

  /**
   * Wait until the command connection is ready, at most `timeout` ms.
   * @returns whether it became ready in time
   */
  async waitUntilReady(timeout: number): Promise<boolean> {
    if (this.state === 'ready') return true;
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        off();
        resolve(false);
      }, timeout);
      const off = this.events.on('state', (e) => {
        if (e.client === this.name && e.current === 'ready') {
          clearTimeout(timer);
          off();
          resolve(true);
        }
      });
    });
  }

  /** Whether a command issued now would be sent (connection ready and breaker admitting). */
  isAvailable(): boolean {
    return this.state === 'ready' && this.breaker.wouldAdmit();
  }

  getConnectionState(): RedisConnectionState {
    return this.state;
  }

  getBreakerState(): BreakerState {
    return this.breaker.getState();
  }

  getHealth(): RedisClientHealth {
    const h = this.monitor.get();
    return {
      name: this.name,
      url: this.url,
      topology: this.topology,
      state: this.state,
      breaker: this.breaker.getState(),
      status: this.status,
      latencyMs: h.latencyMs,
      consecutiveFailures: h.consecutiveFailures,
      consecutiveSuccesses: h.consecutiveSuccesses,
      successRate: h.successRate,
      failureRate: h.failureRate,
      // While disconnected the connection's own error (refused, TLS, auth) says more than a failed PING.
      lastError:
        (this.state !== 'ready' && this.lastConnectionError) || h.lastError || this.lastConnectionError,
      checkedAt: h.checkedAt,
    };
  }

  /** Run one health check now, outside the interval. Resolves to whether Redis answered in time. */
  checkHealth(): Promise<boolean> {
    return this.monitor.check();
  }

  stats(): { counters: ClientCounters; breaker: { opened: number; rejected: number }; pool: PoolStats } {
    return { counters: { ...this.counters }, breaker: this.breaker.getCounts(), pool: this.pool.stats() };
  }

  /**
   * The shared subscriber connection of this client, created on first use. SUBSCRIBE puts a connection
   * in subscriber mode, so it cannot be the command connection. Re-subscribes by itself after reconnects.
   */
  subscriber(): RedisConnection {
    if (!this.subscriberConn) {
      // Subscriptions are state that ioredis re-sends after every reconnect, so SUBSCRIBE may wait for
      // the connection (offline queue) instead of failing fast like data commands. ioredis only re-sends
      // subscriptions whose reply arrived; a SUBSCRIBE in flight when the socket drops would otherwise be
      // dropped unsettled (no command timeout here), so it is re-sent (SUBSCRIBE is idempotent).
      this.subscriberConn = this.createConnection({
        commandTimeout: undefined,
        enableOfflineQueue: true,
        autoResendUnfulfilledCommands: true,
      });
      this.owned.add(this.subscriberConn);
      if (this.subscriberConn instanceof Redis) {
        handleRestoreRejections(this.subscriberConn);
        holdSubscribesDuringHandshake(this.subscriberConn);
      }
      this.subscriberConn.on('error', () => undefined);
      this.subscriberConn.connect().catch(() => undefined);
    }
    return this.subscriberConn;
  }

  /**
   * A new connection of this client for a role that needs one to itself (blocking reads, a queue
   * worker). It is owned by the client and closed on shutdown; `overrides` are ioredis options, e.g.
   * `{ commandTimeout: undefined, maxRetriesPerRequest: null }` for blocking work.
   */
  createDedicated(role: string, overrides: RedisOptions = {}): RedisConnection {
    const conn = this.createConnection(overrides);
    this.owned.add(conn);
    conn.on('error', (err: Error) => this.logger.debug(`${role} connection: ${this.describe(err)}`));
    conn.on('end', () => this.owned.delete(conn));
    conn.connect().catch(() => undefined);
    return conn;
  }

  /**
   * Borrow a dedicated connection from the pool for work that needs one to itself (WATCH/MULTI, blocking
   * commands shorter than `commandTimeout`), and give it back when `fn` settles.
   * @throws RedisUnavailableError when the breaker is open, the client is down, or the current request's
   * Redis budget is spent (`request-budget`)
   * @throws RedisPoolTimeoutError when no connection is free within `pool.acquireTimeout`
   */
  async withConnection<T>(fn: (conn: RedisConnection) => Promise<T>): Promise<T> {
    if (this.state !== 'ready') throw new RedisUnavailableError(this.name, 'disconnected');
    if (!this.breaker.wouldAdmit()) throw new RedisUnavailableError(this.name, this.hook.rejectReason());
    const budget = activeBudget();
    if (budget === undefined) return this.pool.use(fn);
    if (budget.spent) throw new RedisUnavailableError(this.name, 'request-budget');
    try {
      return await this.pool.use(fn);
    } catch (err) {
      // Dedicated connections are not hooked: read their timeouts and lost connections from the message.
      const message = (err as Error)?.message;
      if (message === 'Command timed out') spendBudget(budget, 'timeout');
      else if (message === 'Connection is closed.') spendBudget(budget, 'connection-lost');
      throw err;
    }
  }

  /**
   * A bounded in-memory store for a lib's degradation path, sized from this client's `fallback` options
   * unless overridden.
   */
  createFallbackStore<V extends NonNullable<unknown>>(
    options: FallbackStoreOptions<V> = {},
  ): FallbackStore<V> {
    return new FallbackStore<V>({
      maxEntries: this.config.fallback.maxEntries,
      maxBytes: this.config.fallback.maxBytes,
      ...options,
    });
  }

  /** Whether libs may serve from memory while Redis is down (`fallback.enabled`). */
  get fallbackEnabled(): boolean {
    return this.config.fallback.enabled;
  }

  /** Libs call this when they serve from their fallback: counted, and emitted as a `fallback` event. */
  reportFallback(lib: string, operation: string, reason: string): void {
    this.counters.fallbacks++;
    this.events.emit('fallback', { client: this.name, lib, operation, reason });
  }

  /** Close every connection this client opened and stop its timers. Safe to call twice. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.monitor.stop();
    this.hook.refuseParked('closed');
    await this.pool.close();
    const conns = [this.command, ...this.owned];
    this.owned.clear();
    await Promise.all(conns.map((c) => this.closeConnection(c)));
    this.hook.dispose();
    this.setState('closed');
  }

  // ---------------------------------------------------------------------------------------------

  private createConnection(overrides: RedisOptions = {}): RedisConnection {
    const { cluster, redisOptions } = this.config;
    if (cluster) {
      const { enableOfflineQueue, ...nodeOverrides } = overrides;
      const conn = new Cluster(cluster.nodes, {
        ...cluster.options,
        ...(enableOfflineQueue === undefined ? {} : { enableOfflineQueue }),
        redisOptions: { ...cluster.options.redisOptions, ...nodeOverrides },
      });
      applyIoredisCompat(conn);
      // ioredis creates each node's connection lazily and announces it before it connects.
      conn.on('+node', (node: Redis) => guardStreamErrors(node));
      return conn;
    }
    const conn = new Redis({ ...redisOptions, ...overrides });
    guardStreamErrors(conn);
    return conn;
  }

  private async openDedicated(role: string): Promise<RedisConnection> {
    const conn = this.createConnection();
    conn.on('error', (err: Error) => this.logger.debug(`${role} connection: ${this.describe(err)}`));
    try {
      await conn.connect();
      return conn;
    } catch (err) {
      if (!(conn instanceof Redis && endBetweenReconnects(conn))) conn.disconnect();
      throw err;
    }
  }

  /**
   * Close one connection and wait until ioredis reports it ended. QUIT first when ready, so Redis
   * finishes what is in flight; a hard disconnect when it does not answer within `commandTimeout`.
   */
  private async closeConnection(conn: RedisConnection): Promise<void> {
    if (conn.status === 'end') return;
    if (conn instanceof Redis && conn.status !== 'ready' && endBetweenReconnects(conn)) return;
    let timer: NodeJS.Timeout | undefined;
    const ended = new Promise<void>((resolve) => {
      conn.once('end', resolve);
      timer = setTimeout(resolve, this.config.commandTimeout);
    });
    if (conn.status === 'ready') conn.quit().catch(() => conn.disconnect());
    else conn.disconnect();
    await ended;
    clearTimeout(timer);
    if ((conn.status as string) !== 'end') {
      conn.disconnect();
      await new Promise<void>((resolve) => {
        if ((conn.status as string) === 'end') resolve();
        else conn.once('end', () => resolve());
        setImmediate(resolve);
      });
    }
  }

  private pingBypassingBreaker(): Promise<unknown> {
    if (this.state !== 'ready') {
      return Promise.reject(new Error(this.lastConnectionError ?? `connection ${this.state}`));
    }
    this.hook.bypass = true;
    try {
      return this.command.ping();
    } finally {
      this.hook.bypass = false;
    }
  }

  private watchState(conn: RedisConnection): void {
    conn.on('ready', () => {
      this.lastConnectionError = null;
      this.breaker.connectionRestored();
      this.setState('ready');
      this.hook.onReady();
      void this.monitor.check();
    });
    conn.on('close', () => {
      this.hook.onClose();
      if (this.closing) return;
      this.setState('reconnecting');
    });
    conn.on('reconnecting', () => {
      if (!this.closing) this.setState('reconnecting');
    });
    conn.on('end', () => this.setState('closed'));
    conn.on('error', (err: Error) => {
      const text = this.describe(err);
      // One line per distinct error while down, not one per reconnect attempt.
      if (text !== this.lastConnectionError) this.logger.warn(`${this.url}: ${text}`);
      this.lastConnectionError = text;
    });
  }

  private setState(current: RedisConnectionState): void {
    const previous = this.state;
    if (previous === current) return;
    this.state = current;
    if (current !== 'ready' && previous === 'ready') {
      this.monitor.markFailed(`connection ${current}`);
    }
    const error = current === 'ready' ? undefined : (this.lastConnectionError ?? undefined);
    if (current === 'ready') this.logger.log(`connected to ${this.url}`);
    else if (this.closing) this.logger.log(`closed the connection to ${this.url}`);
    else if (previous === 'ready')
      this.logger.warn(`lost connection to ${this.url} (${current}); failing fast`);
    this.events.emit('state', { client: this.name, previous, current, error });
    this.updateStatus();
  }

  private onBreakerTransition(t: BreakerTransition): void {
    const log = t.current === 'closed' ? 'log' : 'warn';
    this.logger[log](`circuit breaker ${t.previous} -> ${t.current}: ${t.reason}`);
    this.events.emit('breaker', { client: this.name, ...t });
    this.updateStatus();
  }

  private onHealthCheck(s: HealthSnapshot): void {
    // Without traffic nothing would ever probe an open breaker, and readiness would stay degraded after
    // Redis came back. A passing health PING, once the breaker would admit a probe, serves as that probe.
    if (s.lastOk && this.breaker.getState() === 'open' && this.breaker.wouldAdmit()) {
      const admission = this.breaker.tryAcquire();
      if (admission === Admission.Probe) this.breaker.record(admission, false, s.latencyMs ?? 0);
    }
    this.reopenIfStuck(s.lastOk === true);
    this.updateStatus();
  }

  /**
   * ioredis reconnects when the socket closes (or its handshake times out), not when a ready socket stays
   * open and answers nothing: half-open TCP after the host or a failover went away, a black hole. After
   * `healthCheck.reconnectAfter` failed checks in a row while the connection is ready and its socket read
   * not one byte, drop it and open a new one (commands in flight fail at once, as they would at their
   * timeout).
   */
  private reopenIfStuck(passed: boolean): void {
    const limit = this.config.healthCheck.reconnectAfter;
    const conn = this.command;
    // Bytes that arrived since the last check prove the socket alive, only slow: a PING that "timed out"
    // because the event loop was blocked (a long synchronous boot) has its PONG read right after.
    const read = (conn as { stream?: { bytesRead?: number } }).stream?.bytesRead ?? 0;
    const silent = read === this.stuckBytesRead;
    this.stuckBytesRead = read;
    if (passed || !silent || conn.status !== 'ready' || limit <= 0 || this.isCluster || this.closing) {
      this.stuckChecks = 0;
      return;
    }
    if (++this.stuckChecks < limit) return;
    this.stuckChecks = 0;
    this.counters.stuckReconnects++;
    this.logger.warn(
      `${this.url} answered none of the last ${limit} health checks and sent no byte while the connection ` +
        `was ready; reopening it`,
    );
    conn.disconnect(true);
  }

  private updateStatus(): void {
    const breaker = this.breaker.getState();
    const last = this.monitor.get().lastOk;
    // Up takes a passing PING since the connection became ready (one is sent at once on 'ready'), so
    // readiness never reports a client no check has proven, and always with a latency.
    const up =
      this.state === 'ready' && last === true && (breaker === 'closed' || breaker === 'forced-closed');
    const status = up ? 'up' : 'degraded';
    if (status === this.status) return;
    this.status = status;
    this.events.emit('health', { client: this.name, health: this.getHealth() });
  }

  private audit(message: string): void {
    this.logger.warn(`[audit] ${message}`);
    this.events.emit('audit', { client: this.name, message });
  }

  private describe(err: unknown): string {
    const text =
      err instanceof Error ? `${err.name === 'Error' ? '' : err.name + ': '}${err.message}` : String(err);
    return redactText(text, this.config.secrets);
  }
}

/**
 * Between reconnect attempts an ioredis connection still holds its closed socket: `disconnect()` would then
 * arm a 2 s "destroy the stream" timer that nothing clears and never emit `end`. Cancel the pending
 * reconnect and end the connection directly instead. Returns false when a live socket exists.
 */
function endBetweenReconnects(conn: Redis): boolean {
  const internals = conn as unknown as {
    connector?: { stream?: { destroyed?: boolean } };
    setStatus(status: string): void;
  };
  const stream = internals.connector?.stream;
  if (stream && !stream.destroyed) return false;
  if (internals.connector) internals.connector.stream = undefined;
  conn.disconnect(); // clears the reconnect timer; with no stream there is nothing else to close
  if (conn.status !== 'end') internals.setStatus('end');
  return true;
}
