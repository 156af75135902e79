import type { ClusterOptions, RedisOptions } from 'ioredis';

/** TLS settings for `rediss://` URLs or explicit `tls`. Strings are PEM contents, not file paths. */
export interface RedisTlsOptions {
  /** PEM CA bundle used to verify the server certificate. */
  ca?: string | Buffer;
  /** PEM client certificate (mutual TLS). */
  cert?: string | Buffer;
  /** PEM client private key (mutual TLS). */
  key?: string | Buffer;
  /** SNI server name and the name checked against the certificate. */
  servername?: string;
  /**
   * Refuse a certificate that does not verify against `ca` (or the system CAs).
   * Set `false` only for local experiments; it is logged as an audit warning.
   * @default true
   */
  rejectUnauthorized?: boolean;
}

/** Circuit breaker shared by every user of one client. */
export interface RedisBreakerOptions {
  /** @default true */
  enabled?: boolean;
  /** Open when at least this percentage of calls in the window failed (1–100). @default 50 */
  failureRateThreshold?: number;
  /** Open when at least this percentage of calls in the window were slow (1–100). @default 80 */
  slowCallRateThreshold?: number;
  /** A call slower than this counts as slow, in ms. @default half of `commandTimeout` */
  slowCallDuration?: number;
  /** Length of the rolling window the rates are computed over, in ms. @default 10_000 */
  window?: number;
  /** Calls the window must hold before the rates are judged. @default 20 */
  minimumVolume?: number;
  /** Time the breaker stays open before it lets one probe through, in ms (jittered). @default 5_000 */
  resetTimeout?: number;
  /** Fraction of `resetTimeout` added or removed at random, 0–1. @default 0.2 */
  resetJitter?: number;
  /** Longest a probe may stay unanswered in half-open before the breaker re-opens, in ms. @default 2 × commandTimeout */
  maxHalfOpenTime?: number;
}

/** Periodic PING of the command connection. */
export interface RedisHealthCheckOptions {
  /** Time between PINGs in ms; 0 disables the monitor. @default 2_000 */
  interval?: number;
  /** A PING slower than this is a failed check, in ms. @default commandTimeout */
  timeout?: number;
  /** Checks kept for the success/failure rates. @default 20 */
  sampleSize?: number;
  /**
   * Failed checks in a row, while the connection is ready and its socket reads nothing, after which the
   * command connection is dropped and reopened. ioredis notices a closed socket (and a handshake that times out), not a ready one that
   * stays open and answers nothing (half-open TCP after a host or failover loss, a black hole).
   * Standalone and Sentinel; Cluster manages its node connections itself. 0 disables. @default 3
   */
  reconnectAfter?: number;
}

/** Bounded pool of dedicated connections for `withConnection()`. */
export interface RedisPoolOptions {
  /** Connections kept open even when idle. @default 0 */
  minSize?: number;
  /** Most connections the pool opens. @default 4 */
  maxSize?: number;
  /** Longest a borrower waits for a free connection, in ms. @default 1_000 */
  acquireTimeout?: number;
  /** An idle connection above `minSize` is closed after this long, in ms. @default 30_000 */
  idleTimeout?: number;
  /** How often idle connections are reaped, in ms. @default 10_000 */
  reapInterval?: number;
  /** A connection idle longer than this is PINGed before it is lent, in ms. @default 5_000 */
  validateAfterIdle?: number;
}

/** Defaults for the in-memory fallback stores libs create while Redis is unavailable. */
export interface RedisFallbackOptions {
  /** @default true */
  enabled?: boolean;
  /** Most entries one store keeps. @default 10_000 */
  maxEntries?: number;
  /** Most bytes (estimated) one store keeps. @default 16 MiB */
  maxBytes?: number;
}

export interface RedisClusterNode {
  host: string;
  port: number;
}

/** Connection settings for one named client. Every duration is in milliseconds. */
export interface RedisClientOptions {
  /** `redis://[user:password@]host[:port][/db]` or `rediss://…` for TLS. @default redis://127.0.0.1:6379 */
  url?: string;
  host?: string;
  port?: number;
  /** ACL user name. */
  username?: string;
  /** Password (ACL or `requirepass`). Never logged. */
  password?: string;
  /** Database index (standalone and Sentinel only). @default 0 */
  db?: number;
  tls?: RedisTlsOptions;
  /** Sentinel addresses; with `name`, selects the Sentinel topology. */
  sentinels?: RedisClusterNode[];
  /** Sentinel master group name. */
  name?: string;
  sentinelUsername?: string;
  sentinelPassword?: string;
  /** Cluster seed nodes; selects the Cluster topology. */
  cluster?: { nodes: Array<RedisClusterNode | string>; options?: Omit<ClusterOptions, 'redisOptions'> };
  /** Time to establish a TCP (+TLS) connection, in ms. @default 5_000 */
  connectTimeout?: number;
  /** Longest any command may take before it is rejected, in ms. @default 1_000 */
  commandTimeout?: number;
  /**
   * How many times a command that could not be *sent* (connection not ready) may wait for the next
   * reconnect, always within its `commandTimeout`. 0 = fail at once. A command that was sent is never
   * sent again. @default 0
   */
  maxRetries?: number;
  /** Upper bound of the reconnect back-off, in ms. @default 2_000 */
  maxReconnectDelay?: number;
  breaker?: RedisBreakerOptions;
  healthCheck?: RedisHealthCheckOptions;
  pool?: RedisPoolOptions;
  fallback?: RedisFallbackOptions;
  /** Extra ioredis options, passed through (connection fields above win). */
  redisOptions?: Omit<RedisOptions, 'host' | 'port' | 'password' | 'username' | 'db' | 'tls'>;
}

/** Options of `RedisClientModule.forRoot()`. Top-level connection fields describe the `default` client. */
export interface RedisClientModuleOptions extends RedisClientOptions {
  /** Further named clients; each inherits the top-level timeouts, breaker, health and pool settings. */
  clients?: Record<string, RedisClientOptions>;
  /** First segment of every key Redwing libs write (`<prefix>:<lib>:<name>`). @default 'redwing' */
  keyPrefix?: string;
  /**
   * One Redis wait per HTTP request: every request runs in a budget scope, and once one of its commands
   * (on any client) times out or loses its connection, its later commands are refused at once with
   * `RedisUnavailableError` (reason `request-budget`) instead of each waiting `commandTimeout`, so libs fall
   * back without a second wait. `false` turns the scope off (each command then waits on its own).
   * @default true
   */
  requestBudget?: boolean;
  /** Read `REDIS_*` environment variables for fields the options leave unset. @default true */
  useEnv?: boolean;
  /** Environment to read when `useEnv` is true. @default process.env */
  env?: Record<string, string | undefined>;
}

export type RedisTopology = 'standalone' | 'sentinel' | 'cluster';

/** Connection state of a client, derived from the ioredis status. */
export type RedisConnectionState = 'connecting' | 'ready' | 'reconnecting' | 'closed';

export type BreakerState = 'closed' | 'open' | 'half-open' | 'forced-open' | 'forced-closed';

/** What `getHealth()` reports for one client. `url` is always redacted. */
export interface RedisClientHealth {
  name: string;
  url: string;
  topology: RedisTopology;
  state: RedisConnectionState;
  breaker: BreakerState;
  /** `up`: ready, last check passed, breaker closed. `degraded`: anything else. */
  status: 'up' | 'degraded';
  latencyMs: number | null;
  consecutiveFailures: number;
  consecutiveSuccesses: number;
  successRate: number;
  failureRate: number;
  lastError: string | null;
  checkedAt: number | null;
}
