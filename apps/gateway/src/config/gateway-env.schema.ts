import type { LogLevel } from '@nestjs/common';
import Joi from 'joi';

/** HTTP platforms the gateway can run on. */
export const HTTP_ADAPTERS = ['fastify', 'express'] as const;
export type HttpAdapterName = (typeof HTTP_ADAPTERS)[number];

/** Nest log levels from the most to the least verbose; `LOG_LEVEL` keeps its level and everything after it. */
const LOG_LEVELS = [
  'verbose',
  'debug',
  'log',
  'warn',
  'error',
  'fatal',
] as const satisfies readonly LogLevel[];
export type GatewayLogLevel = (typeof LOG_LEVELS)[number];

/** Environment of the gateway after validation, with defaults applied and numbers converted. */
export interface GatewayEnv {
  /** TCP port to listen on; 0 picks a free one. @default 3000 */
  PORT: number;
  /** Interface to bind. @default 127.0.0.1 (0.0.0.0 in the container image) */
  HOST: string;
  /** @default fastify */
  HTTP_ADAPTER: HttpAdapterName;
  /**
   * URL of the `default` Redis client (cache, sessions, rate limits, pub/sub). Unset, `@redwing/redis` applies
   * its own default (redis://127.0.0.1:6379) or a topology from `REDIS_SENTINELS` / `REDIS_CLUSTER_NODES`.
   */
  REDIS_URL?: string;
  /** URL of the `durable` Redis client (a `noeviction` instance for the job queue); unset = no such client. */
  REDIS_DURABLE_URL?: string;
  /** `worker` runs the export processor; `producer` only enqueues. @default worker */
  JOB_QUEUE_ROLE?: 'worker' | 'producer';
  /** Attempts per job before it is dead-lettered (read by @redwing/job-queue). @default 3 */
  JOB_QUEUE_ATTEMPTS?: number;
  /** How long shutdown waits for active jobs, ms (read by @redwing/job-queue). @default 10_000 */
  JOB_QUEUE_DRAIN_TIMEOUT?: number;
  /** How long an idempotency key returns the same job, ms (read by @redwing/job-queue). @default 86_400_000 */
  JOB_QUEUE_IDEMPOTENCY_WINDOW?: number;
  /** `refuse`, `unhealthy` or `warn` when Redis may evict queue keys (read by @redwing/job-queue). @default refuse */
  JOB_QUEUE_DURABILITY_GUARD?: 'refuse' | 'unhealthy' | 'warn';
  /** Latency of the simulated slow upstream, in ms. @default 200 */
  UPSTREAM_DELAY_MS: number;
  /** Requests per minute one client may make to `GET /boards`. @default 120 */
  RATE_LIMIT_BOARDS: number;
  /** Reverse proxies in front of the gateway that append to `X-Forwarded-For` (0–32). @default 0 */
  RATE_LIMIT_TRUST_PROXY_HOPS?: number;
  /** Gateway instances sharing Redis; the in-memory limit is points / instances. @default 1 */
  RATE_LIMIT_INSTANCES?: number;
  /** Prefix length IPv6 clients are grouped by (1–128). @default 56 */
  RATE_LIMIT_IPV6_PREFIX?: number;
  /** Shadow mode for every rate limit (count and report, never refuse). @default false */
  RATE_LIMIT_SHADOW?: boolean;
  /** Also send `X-RateLimit-*` headers. @default false */
  RATE_LIMIT_LEGACY_HEADERS?: boolean;
  /** Default cache TTL, ms. @default 60_000 */
  CACHE_TTL?: number;
  /** TTL of `GET /boards/:id` and the list, ms. @default 30_000 */
  CACHE_BOARDS_TTL?: number;
  /** How long a board may be served stale while one request refreshes it (also stale-if-error), ms. @default 30_000 */
  CACHE_BOARDS_STALE_WHILE_REVALIDATE?: number;
  /** Cache entries kept in process per profile. @default 10_000 */
  CACHE_L1_MAX_ENTRIES?: number;
  /**
   * Origins allowed to open the live WebSocket (`/live`), comma-separated (`https://app.example.com,…`).
   * Unset: the gateway's own `http://127.0.0.1:<port>` and `http://localhost:<port>`. A request without an
   * `Origin` header (a non-browser client) is always allowed.
   */
  LIVE_ALLOWED_ORIGINS?: string;
  /** Largest WebSocket message a client may send, bytes; a bigger one closes the socket. @default 16_384 */
  LIVE_MAX_PAYLOAD?: number;
  /** Messages per second one socket may send (token bucket through RateLimitService). @default 20 */
  LIVE_MESSAGE_RATE?: number;
  /** Bytes queued for one socket before it is disconnected as a slow consumer. @default 1_048_576 */
  LIVE_SEND_BUFFER?: number;
  /** Channels one socket may subscribe to at once. @default 50 */
  LIVE_MAX_CHANNELS?: number;
  /** Resumable events kept per live channel (read by `@redwing/pubsub`). @default 1_000 */
  PUBSUB_RETENTION_MAX_EVENTS?: number;
  /** Age after which resumable events are trimmed and an idle channel's stream expires, ms. @default 600_000 */
  PUBSUB_RETENTION_MAX_AGE?: number;
  /** Lease of a lock, ms (read by `@redwing/lock`, which checks the range). @default 30_000 */
  LOCK_TTL?: number;
  /** How long `acquire()` waits for a busy lock by default, ms. @default 10_000 */
  LOCK_WAIT?: number;
  /** Longest pause between a lock waiter's fallback retries, ms. @default 250 */
  LOCK_RETRY_INTERVAL?: number;
  /** Redis clients voting on locks (comma list: 1, or 3+ independent masters). @default default */
  LOCK_CLIENTS?: string;
  /** Lease of the archive lock of `POST /boards/:id/archive`, ms. @default 10_000 */
  ARCHIVE_LOCK_TTL?: number;
  /** How long an archive waits for a board another request is archiving before 409, ms. @default 0 */
  ARCHIVE_LOCK_WAIT?: number;
  /** Lease of the housekeeping leadership; a dead leader is replaced within about this, ms. @default 5_000 */
  LEADER_TTL?: number;
  /** How often the leader runs the housekeeping task, ms. @default 60_000 */
  HOUSEKEEPING_INTERVAL?: number;
  /**
   * Session key ring, newest first, comma-separated (each 32+ bytes; `openssl rand -base64 32`). Unset: a
   * well-known development key, or a random key per process when `NODE_ENV=production` (docs/session.md).
   */
  SESSION_KEYS?: string;
  /** A session unused this long expires, ms. @default 1_800_000 */
  SESSION_IDLE_TIMEOUT?: number;
  /** A session expires this long after login however active, ms. @default 43_200_000 */
  SESSION_ABSOLUTE_TIMEOUT?: number;
  /** Rolling refresh: the idle expiry is extended at most once per this interval, ms. @default 60_000 */
  SESSION_TOUCH_INTERVAL?: number;
  /** `true`, `false` or `auto` (Secure except on plain-HTTP loopback). @default auto */
  SESSION_COOKIE_SECURE?: string;
  /**
   * Demo users, `name:password` pairs, comma-separated, kept as scrypt hashes. Unset: `alice:demo,bob:demo`
   * outside production, nobody when `NODE_ENV=production`.
   */
  AUTH_DEMO_USERS?: string;
  /** Least severe level that is logged. @default log */
  LOG_LEVEL: GatewayLogLevel;
  /** `production` turns off the development defaults (demo users, the well-known session key). */
  NODE_ENV?: string;
  REDIS_CONNECT_TIMEOUT?: number;
  REDIS_COMMAND_TIMEOUT?: number;
  REDIS_MAX_RETRIES?: number;
  REDIS_HEALTH_CHECK_INTERVAL?: number;
  OTEL_SERVICE_NAME?: string;
  OTEL_TRACES_EXPORTER?: string;
  OTEL_EXPORTER_OTLP_ENDPOINT?: string;
  OTEL_EXPORTER_OTLP_PROTOCOL?: string;
  SENTRY_DSN?: string;
}

const redisUrl = () => Joi.string().uri({ scheme: ['redis', 'rediss'] });
const millis = (min: number, max: number) => Joi.number().integer().min(min).max(max);
/** An integer variable whose every failure says the whole rule: `"NAME" must be an integer from … to … (what)`. */
const integerVar = (min: number, max: number, what: string) => {
  const rule = `{{#label}} must be an integer from ${min} to ${max} (${what})`;
  return Joi.number().integer().min(min).max(max).messages({
    'number.base': rule,
    'number.integer': rule,
    'number.min': rule,
    'number.max': rule,
    'number.unsafe': rule,
    'number.infinity': rule,
  });
};
/** A true/false variable (also 1/0, yes/no, in any case). */
const booleanVar = () =>
  Joi.boolean()
    .truthy('1', 'yes')
    .falsy('0', 'no')
    .messages({ 'boolean.base': '{{#label}} must be true or false' });
/** The cache variables name themselves without quotes in their messages, as they always have. */
const cacheVar = (min: number, max: number, what: string) =>
  integerVar(min, max, what).prefs({ errors: { wrap: { label: false } } });

/**
 * Joi schema of the gateway's environment, used by `ConfigModule.forRoot({ validationSchema })`.
 *
 * Unknown variables are allowed (the process environment is full of them); the `REDIS_*` tuning
 * variables listed here are checked for type only — `@redwing/redis` validates their ranges and
 * reads the ones not listed (`REDIS_BREAKER_*`, …) itself.
 */
export const gatewayEnvSchema = Joi.object<GatewayEnv>({
  PORT: Joi.number().port().default(3000),
  HOST: Joi.string().hostname().default('127.0.0.1'),
  HTTP_ADAPTER: Joi.string()
    .valid(...HTTP_ADAPTERS)
    .default('fastify'),
  REDIS_URL: redisUrl(),
  REDIS_DURABLE_URL: redisUrl(),
  JOB_QUEUE_ROLE: Joi.string().valid('worker', 'producer'),
  // Same ranges as @redwing/job-queue (which reads them), so a bad value fails here with every other problem.
  JOB_QUEUE_ATTEMPTS: integerVar(1, 1_000, 'attempts per job'),
  JOB_QUEUE_DRAIN_TIMEOUT: integerVar(0, 3_600_000, 'drain timeout at shutdown, ms'),
  JOB_QUEUE_IDEMPOTENCY_WINDOW: integerVar(1_000, 2_592_000_000, 'idempotency window, ms'),
  JOB_QUEUE_DURABILITY_GUARD: Joi.string().valid('refuse', 'unhealthy', 'warn'),
  UPSTREAM_DELAY_MS: millis(0, 60_000).default(200),
  RATE_LIMIT_BOARDS: Joi.number().integer().min(1).default(120),
  // Unset variables stay unset (the features apply the defaults documented on GatewayEnv).
  RATE_LIMIT_TRUST_PROXY_HOPS: integerVar(0, 32, 'proxies that append to X-Forwarded-For').messages({
    'number.base':
      '{{#label}} must be the number of reverse proxies in front of the gateway (0 = none); ' +
      '"trust every proxy" is refused because any client could then pick its own address with X-Forwarded-For',
  }),
  RATE_LIMIT_INSTANCES: integerVar(1, 10_000, 'gateway instances sharing Redis'),
  RATE_LIMIT_IPV6_PREFIX: integerVar(1, 128, 'prefix length IPv6 clients are grouped by'),
  RATE_LIMIT_SHADOW: booleanVar(),
  RATE_LIMIT_LEGACY_HEADERS: booleanVar(),
  CACHE_TTL: cacheVar(1, 86_400_000, 'default cache TTL, ms'),
  CACHE_BOARDS_TTL: cacheVar(1, 86_400_000, 'TTL of GET /boards/:id and the list, ms'),
  CACHE_BOARDS_STALE_WHILE_REVALIDATE: cacheVar(
    0,
    86_400_000,
    'how long a board may be served stale while one request refreshes it, ms',
  ),
  CACHE_L1_MAX_ENTRIES: cacheVar(1, 10_000_000, 'entries kept in process per profile'),
  LIVE_ALLOWED_ORIGINS: Joi.string()
    .pattern(/^\s*https?:\/\/[^\s,/]+(\s*,\s*https?:\/\/[^\s,/]+)*\s*$/)
    .allow('')
    .messages({
      'string.pattern.base':
        '{{#label}} must be a comma-separated list of origins like https://app.example.com (scheme, host, optional port; no path)',
    }),
  LIVE_MAX_PAYLOAD: integerVar(256, 1_048_576, 'largest WebSocket message a client may send, bytes'),
  LIVE_MESSAGE_RATE: integerVar(1, 10_000, 'messages per second one socket may send'),
  LIVE_SEND_BUFFER: integerVar(16_384, 67_108_864, 'bytes queued for one socket before it is dropped'),
  LIVE_MAX_CHANNELS: integerVar(1, 1_000, 'channels one socket may subscribe to'),
  PUBSUB_RETENTION_MAX_EVENTS: integerVar(10, 10_000_000, 'resumable events kept per channel'),
  PUBSUB_RETENTION_MAX_AGE: integerVar(1_000, 2_592_000_000, 'age limit of resumable events, ms'),
  LOCK_TTL: integerVar(50, 3_600_000, 'lock lease, ms'),
  LOCK_WAIT: integerVar(0, 3_600_000, 'default lock wait, ms'),
  LOCK_RETRY_INTERVAL: integerVar(5, 60_000, 'longest pause between lock retries, ms'),
  LOCK_CLIENTS: Joi.string()
    .pattern(/^\s*[A-Za-z0-9_.-]+(\s*,\s*[A-Za-z0-9_.-]+)*\s*$/)
    .messages({
      'string.pattern.base': '{{#label}} must be a comma-separated list of Redis client names, e.g. default',
    }),
  ARCHIVE_LOCK_TTL: integerVar(50, 3_600_000, 'lease of the archive lock, ms'),
  ARCHIVE_LOCK_WAIT: integerVar(0, 60_000, 'wait for a board being archived before 409, ms'),
  LEADER_TTL: integerVar(100, 600_000, 'lease of the housekeeping leadership, ms'),
  HOUSEKEEPING_INTERVAL: integerVar(10, 86_400_000, 'period of the leader-only housekeeping task, ms'),
  // Checked (without echoing a value) by @redwing/session and apps/gateway/src/auth/auth.config.ts.
  SESSION_KEYS: Joi.string().allow(''),
  SESSION_IDLE_TIMEOUT: integerVar(100, 34_560_000_000, 'session idle timeout, ms'),
  SESSION_ABSOLUTE_TIMEOUT: integerVar(100, 34_560_000_000, 'session absolute timeout, ms'),
  SESSION_TOUCH_INTERVAL: integerVar(0, 34_560_000_000, 'session rolling refresh interval, ms'),
  SESSION_COOKIE_SECURE: Joi.string().valid('true', 'false', 'auto'),
  AUTH_DEMO_USERS: Joi.string().allow(''),
  LOG_LEVEL: Joi.string()
    .valid(...LOG_LEVELS)
    .default('log'),
  NODE_ENV: Joi.string().allow(''),
  // Same ranges as @redwing/redis, so a bad value fails here first, with every other problem.
  REDIS_CONNECT_TIMEOUT: millis(1, 600_000),
  REDIS_COMMAND_TIMEOUT: millis(1, 600_000),
  REDIS_MAX_RETRIES: Joi.number().integer().min(0).max(100),
  REDIS_HEALTH_CHECK_INTERVAL: millis(0, 3_600_000),
  OTEL_SERVICE_NAME: Joi.string().allow(''),
  OTEL_TRACES_EXPORTER: Joi.string().allow(''),
  OTEL_EXPORTER_OTLP_ENDPOINT: Joi.string()
    .uri({ scheme: ['http', 'https'] })
    .allow(''),
  OTEL_EXPORTER_OTLP_PROTOCOL: Joi.string().valid('grpc', 'http/protobuf', 'http/json').allow(''),
  SENTRY_DSN: Joi.string().uri().allow(''),
});

/** The gateway's environment is invalid; `problems` has one line per variable, naming it. */
export class GatewayConfigError extends Error {
  override readonly name = 'GatewayConfigError';

  constructor(readonly problems: string[]) {
    super(
      `Invalid gateway configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}\n` +
        `Fix the environment variables above; config/gateway.env.example lists them all with their defaults.`,
    );
  }
}

/**
 * Validates an environment (default `process.env`) against {@link gatewayEnvSchema} and returns it typed,
 * with defaults applied. Every problem is reported, not only the first; values are never echoed, so a
 * password in a URL cannot leak into the message.
 * @throws GatewayConfigError when a variable is invalid.
 */
export function loadGatewayEnv(env: Record<string, string | undefined> = process.env): GatewayEnv {
  const { error, value } = gatewayEnvSchema.validate(env, {
    abortEarly: false,
    allowUnknown: true,
    convert: true,
  });
  if (error) throw new GatewayConfigError(error.details.map((d) => d.message));
  return value;
}

/** The Nest log levels enabled by `LOG_LEVEL` (that level and every more severe one). */
export function logLevelsFrom(level: GatewayLogLevel): LogLevel[] {
  return LOG_LEVELS.slice(LOG_LEVELS.indexOf(level));
}
