import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { ClusterOptions, RedisOptions } from 'ioredis';
import { redactText } from './redact';
import { DEFAULT_CLIENT } from './redis.constants';
import { RedisConfigError } from './redis.errors';
import type {
  RedisBreakerOptions,
  RedisClientModuleOptions,
  RedisClientOptions,
  RedisClusterNode,
  RedisFallbackOptions,
  RedisHealthCheckOptions,
  RedisPoolOptions,
  RedisTlsOptions,
  RedisTopology,
} from './redis.interfaces';

export type ResolvedBreakerOptions = Required<RedisBreakerOptions>;
export type ResolvedHealthCheckOptions = Required<RedisHealthCheckOptions>;
export type ResolvedPoolOptions = Required<RedisPoolOptions>;
export type ResolvedFallbackOptions = Required<RedisFallbackOptions>;

/** One client's settings after defaults, environment and validation: everything the client needs. */
export interface ResolvedRedisClientConfig {
  name: string;
  /** `cluster` if `cluster` is set, `sentinel` if `sentinels` is set, else `standalone`. */
  topology: RedisTopology;
  /** The address with the password replaced by `***`; safe to log and report. */
  displayUrl: string;
  /** Every password of this client, so log lines can be scrubbed with `redactText`. */
  secrets: string[];
  /** In ms. */
  commandTimeout: number;
  /** In ms. */
  connectTimeout: number;
  maxRetries: number;
  /** In ms. */
  maxReconnectDelay: number;
  breaker: ResolvedBreakerOptions;
  healthCheck: ResolvedHealthCheckOptions;
  pool: ResolvedPoolOptions;
  fallback: ResolvedFallbackOptions;
  /**
   * ioredis options for standalone and Sentinel (`new Redis(redisOptions)`). For Cluster, the per-node
   * options (the same object as `cluster.options.redisOptions`).
   */
  redisOptions: RedisOptions;
  /** Cluster only: `new Cluster(cluster.nodes, cluster.options)`. */
  cluster?: { nodes: Array<{ host: string; port: number }>; options: ClusterOptions };
  /** A host is not loopback and TLS is off: the client logs an audit warning. */
  insecureRemote: boolean;
}

export interface ResolvedRedisModuleConfig {
  /** First segment of every key Redwing libs write. */
  keyPrefix: string;
  /** `default` first, then the named clients in the order given. */
  clients: ResolvedRedisClientConfig[];
}

/** What `readRedisEnv` returns: client options plus the module-wide key prefix. */
export type RedisEnvOptions = RedisClientOptions & Pick<RedisClientModuleOptions, 'keyPrefix'>;

type EnvKind = 'url' | 'string' | 'int' | 'bool' | 'nodes' | 'file';
interface EnvSpec {
  name: string;
  field: string;
  kind: EnvKind;
  description: string;
  default: string;
}

// prettier-ignore
const ENV: readonly EnvSpec[] = [
  { name: 'REDIS_URL', field: 'url', kind: 'url', description: 'Address: `redis://[user:password@]host[:port][/db]`, `rediss://` for TLS', default: '`redis://127.0.0.1:6379`' },
  { name: 'REDIS_USERNAME', field: 'username', kind: 'string', description: 'ACL user name (overrides the one in `REDIS_URL`)', default: '—' },
  { name: 'REDIS_PASSWORD', field: 'password', kind: 'string', description: 'Password (overrides the one in `REDIS_URL`); never logged', default: '—' },
  { name: 'REDIS_TLS_CA_FILE', field: 'tls.ca', kind: 'file', description: 'Path of a PEM CA bundle; turns TLS on', default: 'system CAs' },
  { name: 'REDIS_TLS_CERT_FILE', field: 'tls.cert', kind: 'file', description: 'Path of a PEM client certificate (mutual TLS); turns TLS on', default: '—' },
  { name: 'REDIS_TLS_KEY_FILE', field: 'tls.key', kind: 'file', description: 'Path of the PEM client private key (mutual TLS); turns TLS on', default: '—' },
  { name: 'REDIS_TLS_SERVERNAME', field: 'tls.servername', kind: 'string', description: 'SNI name checked against the certificate; turns TLS on', default: 'the host' },
  { name: 'REDIS_TLS_REJECT_UNAUTHORIZED', field: 'tls.rejectUnauthorized', kind: 'bool', description: '`false` accepts an unverified certificate (audit warning); turns TLS on', default: '`true`' },
  { name: 'REDIS_SENTINELS', field: 'sentinels', kind: 'nodes', description: 'Sentinel addresses `host:port,host:port`; selects Sentinel', default: '—' },
  { name: 'REDIS_SENTINEL_NAME', field: 'name', kind: 'string', description: 'Sentinel master group name', default: '—' },
  { name: 'REDIS_SENTINEL_PASSWORD', field: 'sentinelPassword', kind: 'string', description: 'Password of the Sentinels; never logged', default: '—' },
  { name: 'REDIS_CLUSTER_NODES', field: 'cluster.nodes', kind: 'nodes', description: 'Cluster seed nodes `host:port,host:port`; selects Cluster', default: '—' },
  { name: 'REDIS_CONNECT_TIMEOUT', field: 'connectTimeout', kind: 'int', description: 'Time to connect (TCP + TLS), ms', default: '`5000`' },
  { name: 'REDIS_COMMAND_TIMEOUT', field: 'commandTimeout', kind: 'int', description: 'Longest any command may take, ms', default: '`1000`' },
  { name: 'REDIS_MAX_RETRIES', field: 'maxRetries', kind: 'int', description: 'Reconnects an unsent command may wait for (within its timeout)', default: '`0`' },
  { name: 'REDIS_MAX_RECONNECT_DELAY', field: 'maxReconnectDelay', kind: 'int', description: 'Upper bound of the reconnect back-off, ms', default: '`2000`' },
  { name: 'REDIS_HEALTH_CHECK_INTERVAL', field: 'healthCheck.interval', kind: 'int', description: 'Time between health PINGs, ms; `0` disables', default: '`2000`' },
  { name: 'REDIS_BREAKER_ENABLED', field: 'breaker.enabled', kind: 'bool', description: 'Circuit breaker on/off', default: '`true`' },
  { name: 'REDIS_BREAKER_FAILURE_RATE', field: 'breaker.failureRateThreshold', kind: 'int', description: 'Failure percentage (1–100) that opens the breaker', default: '`50`' },
  { name: 'REDIS_BREAKER_SLOW_CALL_RATE', field: 'breaker.slowCallRateThreshold', kind: 'int', description: 'Slow-call percentage (1–100) that opens the breaker', default: '`80`' },
  { name: 'REDIS_BREAKER_SLOW_CALL_DURATION', field: 'breaker.slowCallDuration', kind: 'int', description: 'A call slower than this is slow, ms', default: 'commandTimeout / 2' },
  { name: 'REDIS_BREAKER_WINDOW', field: 'breaker.window', kind: 'int', description: 'Rolling window of the rates, ms', default: '`10000`' },
  { name: 'REDIS_BREAKER_MIN_VOLUME', field: 'breaker.minimumVolume', kind: 'int', description: 'Calls the window needs before the rates count', default: '`20`' },
  { name: 'REDIS_BREAKER_RESET_TIMEOUT', field: 'breaker.resetTimeout', kind: 'int', description: 'Time open before one probe, ms (jittered)', default: '`5000`' },
  { name: 'REDIS_FALLBACK_ENABLED', field: 'fallback.enabled', kind: 'bool', description: 'In-memory fallback stores on/off', default: '`true`' },
  { name: 'REDIS_FALLBACK_MAX_ENTRIES', field: 'fallback.maxEntries', kind: 'int', description: 'Most entries one fallback store keeps', default: '`10000`' },
  { name: 'REDIS_FALLBACK_MAX_BYTES', field: 'fallback.maxBytes', kind: 'int', description: 'Most bytes one fallback store keeps', default: '`16777216`' },
  { name: 'REDIS_KEY_PREFIX', field: 'keyPrefix', kind: 'string', description: 'First segment of every key', default: '`redwing`' },
];

/** The `REDIS_*` variables `readRedisEnv` reads: the README table is checked against this list. */
export const REDIS_ENV_VARS: ReadonlyArray<{
  name: string;
  field: string;
  description: string;
  default: string;
}> = ENV.map(({ name, field, description, default: def }) => ({ name, field, description, default: def }));

const DEFAULT_HOST = '127.0.0.1';
const DEFAULT_PORT = 6379;
const MS = ' ms';

/** [min, max, unit] of every integer (or, for resetJitter, real) option. */
const LIMITS: Record<string, [number, number, string]> = {
  port: [1, 65_535, ''],
  db: [0, 15, ''],
  connectTimeout: [1, 600_000, MS],
  commandTimeout: [1, 600_000, MS],
  maxRetries: [0, 100, ''],
  maxReconnectDelay: [1, 600_000, MS],
  'breaker.failureRateThreshold': [1, 100, ' (%)'],
  'breaker.slowCallRateThreshold': [1, 100, ' (%)'],
  'breaker.slowCallDuration': [1, 600_000, MS],
  'breaker.window': [1, 3_600_000, MS],
  'breaker.minimumVolume': [1, 1_000_000, ''],
  'breaker.resetTimeout': [1, 3_600_000, MS],
  'breaker.resetJitter': [0, 1, ''],
  'breaker.maxHalfOpenTime': [1, 3_600_000, MS],
  'healthCheck.interval': [0, 3_600_000, MS],
  'healthCheck.timeout': [1, 600_000, MS],
  'healthCheck.sampleSize': [1, 10_000, ''],
  'healthCheck.reconnectAfter': [0, 1_000, ''],
  'pool.minSize': [0, 1_000, ''],
  'pool.maxSize': [1, 1_000, ''],
  'pool.acquireTimeout': [1, 600_000, MS],
  'pool.idleTimeout': [1, 86_400_000, MS],
  'pool.reapInterval': [1, 3_600_000, MS],
  'pool.validateAfterIdle': [0, 86_400_000, MS],
  'fallback.maxEntries': [1, 100_000_000, ''],
  'fallback.maxBytes': [1, 17_179_869_184, ' (bytes)'],
};

// prettier-ignore
const SECTIONS = {
  breaker: ['enabled', 'failureRateThreshold', 'slowCallRateThreshold', 'slowCallDuration', 'window', 'minimumVolume',
    'resetTimeout', 'resetJitter', 'maxHalfOpenTime'],
  healthCheck: ['interval', 'timeout', 'sampleSize', 'reconnectAfter'],
  pool: ['minSize', 'maxSize', 'acquireTimeout', 'idleTimeout', 'reapInterval', 'validateAfterIdle'],
  fallback: ['enabled', 'maxEntries', 'maxBytes'],
} as const;
type Section = keyof typeof SECTIONS;

// prettier-ignore
const CLIENT_KEYS = ['url', 'host', 'port', 'username', 'password', 'db', 'tls', 'sentinels', 'name', 'sentinelUsername',
  'sentinelPassword', 'cluster', 'connectTimeout', 'commandTimeout', 'maxRetries', 'maxReconnectDelay', 'breaker',
  'healthCheck', 'pool', 'fallback', 'redisOptions'];
const MODULE_ONLY_KEYS = ['clients', 'keyPrefix', 'useEnv', 'env'];
// `isGlobal` is the ConfigurableModuleBuilder extra; tolerated in case it is not stripped before us.
const MODULE_KEYS = [...CLIENT_KEYS, ...MODULE_ONLY_KEYS, 'isGlobal'];
const TLS_KEYS = ['ca', 'cert', 'key', 'servername', 'rejectUnauthorized'];
const NODE_KEYS = ['host', 'port'];
const CLUSTER_KEYS = ['nodes', 'options'];
// eslint-disable-next-line no-control-regex -- control characters are what it finds
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;
const KEY_PREFIX = /^[A-Za-z0-9_.-]{1,64}$/;
const CLIENT_NAME = /^[A-Za-z0-9_-]{1,32}$/;
/** ioredis fields this module owns: a user's `redisOptions` cannot set them. */
// prettier-ignore
const OWNED_CONNECTION_KEYS = ['host', 'port', 'username', 'password', 'db', 'tls', 'sentinels', 'name', 'sentinelUsername',
  'sentinelPassword', 'enableTLSForSentinelMode'];
/** Not allowed in `ClusterOptions.redisOptions`: ioredis sets them per node itself, or they make no sense there. */
// prettier-ignore
const CLUSTER_NODE_FORBIDDEN = ['host', 'port', 'path', 'sentinels', 'retryStrategy', 'enableOfflineQueue', 'readOnly',
  'himportFieldsets', 'lazyConnect', 'db', 'name', 'sentinelUsername', 'sentinelPassword', 'enableTLSForSentinelMode'];

type Obj = Record<string, unknown>;
type Label = (path: string) => string;

/** A validation failure before it becomes a (scrubbed) RedisConfigError. */
class Problem {
  constructor(
    readonly field: string,
    readonly message: string,
  ) {}
}

interface Sourced<T> {
  value: T;
  field: string;
}

interface UrlParts {
  tls: boolean;
  host?: string;
  port?: number;
  username?: string;
  password?: string;
  db?: number;
}

/** One layer of settings (the explicit options of a client, or the environment), validated. */
interface Layer {
  label: Label;
  host?: Sourced<string>;
  port?: Sourced<number>;
  username?: Sourced<string>;
  password?: Sourced<string>;
  db?: Sourced<number>;
  tlsOn?: boolean;
  tls: RedisTlsOptions;
  sentinels?: RedisClusterNode[];
  name?: string;
  sentinelUsername?: string;
  sentinelPassword?: string;
  cluster?: { nodes: RedisClusterNode[]; options: Obj };
  scalars: Partial<Record<'connectTimeout' | 'commandTimeout' | 'maxRetries' | 'maxReconnectDelay', number>>;
  sections: { [S in Section]: Obj };
  redisOptions?: Obj;
}

/**
 * Resolves the module options (explicit options > `REDIS_*` environment > defaults) into one validated
 * config per client, `default` first.
 * @throws RedisConfigError naming the option (e.g. `clients.cache.commandTimeout`) or variable and the fix;
 * never any other error, and never with a password in it.
 */
export function resolveRedisConfig(options: RedisClientModuleOptions): ResolvedRedisModuleConfig {
  const secrets = collectSecrets(options);
  try {
    return resolve(options);
  } catch (err) {
    throw toConfigError(err, secrets);
  }
}

/**
 * Reads the `REDIS_*` variables (see `REDIS_ENV_VARS`) into options; unset or empty variables are left
 * out. TLS file variables are read from disk.
 * @throws RedisConfigError naming the variable.
 */
export function readRedisEnv(env: Record<string, string | undefined>): RedisEnvOptions {
  const secrets = collectSecrets({ useEnv: true, env });
  try {
    return readEnvRaw(env).raw;
  } catch (err) {
    throw toConfigError(err, secrets);
  }
}

/** True for `localhost`, 127.0.0.0/8 and ::1 (also IPv4-mapped), in any notation Node would accept. */
export function isLoopbackHost(host: string): boolean {
  if (typeof host !== 'string' || host === '') return false;
  let h = host.trim().toLowerCase();
  if (h.endsWith('.')) h = h.slice(0, -1);
  if (h === 'localhost') return true;
  if (/[@/?#\\\s]/.test(h)) return false;
  if (isIP(h.replace(/^\[|\]$/g, '')) === 6 && !h.startsWith('[')) h = `[${h}]`;
  let canonical: string;
  try {
    canonical = new URL(`http://${h}/`).hostname;
  } catch {
    return false;
  }
  if (isIP(canonical) === 4) return canonical.startsWith('127.');
  return (
    canonical === 'localhost' ||
    canonical === '[::1]' ||
    /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(canonical)
  );
}

/**
 * Reconnect delay for attempt `times` (1, 2, …): 50·2^times ms, ±20 % jitter, at most `maxReconnectDelay`.
 * Never `null`: the client always reconnects.
 */
export function reconnectDelay(
  times: number,
  maxReconnectDelay: number,
  random: () => number = Math.random,
): number {
  const attempt = Number.isFinite(times) && times > 0 ? Math.min(times, 32) : 1;
  const base = Math.min(50 * 2 ** attempt, maxReconnectDelay);
  const jittered = Math.round(base * (0.8 + 0.4 * random()));
  return Math.max(1, Math.min(maxReconnectDelay, jittered));
}

function resolve(options: unknown): ResolvedRedisModuleConfig {
  const top = object(options, 'options', 'must be an object ({} for all defaults)');
  rejectUnknownKeys(top, MODULE_KEYS, '');
  const useEnv = bool(top.useEnv, 'useEnv') ?? true;
  let envLayer: Layer | undefined;
  let envPrefix: string | undefined;
  if (useEnv) {
    const source = top.env === undefined ? process.env : top.env;
    const env = readEnvRaw(source, 'env');
    envLayer = env.layer;
    envPrefix = env.raw.keyPrefix;
  }
  const keyPrefix = checkKeyPrefix(top.keyPrefix, 'keyPrefix') ?? envPrefix ?? 'redwing';
  const explicit = checkClient(top, (p) => p);
  const topLayers = envLayer ? [explicit, envLayer] : [explicit];
  const clients = [finish(DEFAULT_CLIENT, '', topLayers, topLayers)];

  if (top.clients !== undefined) {
    const named = object(top.clients, 'clients', 'must be an object of named client options');
    for (const name of Object.keys(named)) {
      if (!CLIENT_NAME.test(name)) {
        throw new Problem(
          'clients',
          `has an invalid client name ${quote(name)}: use 1–32 letters, digits, _ or -`,
        );
      }
      const prefix = `clients.${name}.`;
      if (name === DEFAULT_CLIENT) {
        throw new Problem(`clients.${name}`, 'is reserved: put the default client options at the top level');
      }
      const raw = object(named[name], `clients.${name}`, 'must be an object of client options');
      rejectUnknownKeys(raw, CLIENT_KEYS, prefix, MODULE_ONLY_KEYS);
      const layer = checkClient(raw, (p) => prefix + p);
      clients.push(finish(name, prefix, [layer], [layer, ...topLayers]));
    }
  }
  return { keyPrefix, clients };
}

/** Builds one client: connection from `connLayers`, timeouts and sections from `settingLayers`. */
function finish(
  name: string,
  prefix: string,
  connLayers: Layer[],
  settingLayers: Layer[],
): ResolvedRedisClientConfig {
  const scalar = (key: keyof Layer['scalars'], def: number): number =>
    first(settingLayers.map((l) => l.scalars[key])) ?? def;
  const section = (s: Section, key: string): unknown => first(settingLayers.map((l) => l.sections[s][key]));

  const commandTimeout = scalar('commandTimeout', 1_000);
  const connectTimeout = scalar('connectTimeout', 5_000);
  const maxRetries = scalar('maxRetries', 0);
  const maxReconnectDelay = scalar('maxReconnectDelay', 2_000);
  const num = (s: Section, key: string, def: number): number =>
    (section(s, key) as number | undefined) ?? def;
  const flag = (s: Section, key: string): boolean => (section(s, key) as boolean | undefined) ?? true;

  const breaker: ResolvedBreakerOptions = {
    enabled: flag('breaker', 'enabled'),
    failureRateThreshold: num('breaker', 'failureRateThreshold', 50),
    slowCallRateThreshold: num('breaker', 'slowCallRateThreshold', 80),
    slowCallDuration: num('breaker', 'slowCallDuration', Math.max(1, Math.round(commandTimeout / 2))),
    window: num('breaker', 'window', 10_000),
    minimumVolume: num('breaker', 'minimumVolume', 20),
    resetTimeout: num('breaker', 'resetTimeout', 5_000),
    resetJitter: num('breaker', 'resetJitter', 0.2),
    maxHalfOpenTime: num('breaker', 'maxHalfOpenTime', 2 * commandTimeout),
  };
  const healthCheck: ResolvedHealthCheckOptions = {
    interval: num('healthCheck', 'interval', 2_000),
    timeout: num('healthCheck', 'timeout', commandTimeout),
    sampleSize: num('healthCheck', 'sampleSize', 20),
    reconnectAfter: num('healthCheck', 'reconnectAfter', 3),
  };
  const pool: ResolvedPoolOptions = {
    minSize: num('pool', 'minSize', 0),
    maxSize: num('pool', 'maxSize', 4),
    acquireTimeout: num('pool', 'acquireTimeout', 1_000),
    idleTimeout: num('pool', 'idleTimeout', 30_000),
    reapInterval: num('pool', 'reapInterval', 10_000),
    validateAfterIdle: num('pool', 'validateAfterIdle', 5_000),
  };
  if (pool.minSize > pool.maxSize) {
    throw new Problem(
      `${prefix}pool.minSize`,
      `(${pool.minSize}) must be less than or equal to pool.maxSize (${pool.maxSize}); lower minSize or raise maxSize`,
    );
  }
  const fallback: ResolvedFallbackOptions = {
    enabled: flag('fallback', 'enabled'),
    maxEntries: num('fallback', 'maxEntries', 10_000),
    maxBytes: num('fallback', 'maxBytes', 16 * 1024 * 1024),
  };

  // Connection: field by field, first layer that sets it wins; topology from the first layer that sets one.
  const pick = <K extends 'host' | 'port' | 'username' | 'password' | 'db'>(key: K): Layer[K] =>
    connLayers.find((l) => l[key] !== undefined)?.[key];
  const host = pick('host')?.value ?? DEFAULT_HOST;
  const port = pick('port')?.value ?? DEFAULT_PORT;
  const username = pick('username')?.value || undefined;
  const password = pick('password')?.value || undefined;
  const db = pick('db');
  const tlsOn = first(connLayers.map((l) => l.tlsOn)) ?? false;
  const topoLayer = connLayers.find((l) => l.sentinels || l.cluster);
  const topology: RedisTopology = topoLayer?.cluster
    ? 'cluster'
    : topoLayer?.sentinels
      ? 'sentinel'
      : 'standalone';
  const sentinelName = first(connLayers.map((l) => l.name));
  const sentinelPassword = first(connLayers.map((l) => l.sentinelPassword)) || undefined;
  const sentinelUsername = first(connLayers.map((l) => l.sentinelUsername)) || undefined;

  let tls: RedisOptions['tls'];
  if (tlsOn) {
    tls = {};
    for (const key of TLS_KEYS) {
      const value = first(connLayers.map((l) => (l.tls as Obj)[key]));
      if (value !== undefined) (tls as Obj)[key] = value;
    }
  }

  const retryStrategy = (times: number): number => reconnectDelay(times, maxReconnectDelay);
  const user = connLayers[0].redisOptions ?? {};
  const base: Obj = { ...user };
  for (const key of OWNED_CONNECTION_KEYS) delete base[key];
  if (typeof user.reconnectOnError === 'function') {
    // 2 would re-send the failed command; a sent command is never sent again, so reconnect only.
    const userReconnect = user.reconnectOnError as (err: Error) => boolean | 1 | 2;
    base.reconnectOnError = (err: Error) => {
      const decision = userReconnect(err);
      return decision === 2 ? 1 : decision;
    };
  }
  const redisOptions: RedisOptions = {
    // The ready check (INFO) may be turned off for ACL users without @dangerous; everything below is not
    // negotiable, because fail-fast and no-replay depend on it.
    enableReadyCheck: true,
    ...(base as RedisOptions),
    lazyConnect: true,
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: null,
    commandTimeout,
    connectTimeout,
    retryStrategy,
  };
  if (username !== undefined) redisOptions.username = username;
  if (password !== undefined) redisOptions.password = password;
  if (tls) redisOptions.tls = tls;

  const secrets = [...new Set([password, sentinelPassword].filter((s): s is string => !!s))];
  const scheme = tlsOn ? 'rediss' : 'redis';
  const userinfo = password ? `${encodeUser(username)}:***@` : username ? `${encodeUser(username)}@` : '';
  const dbValue = db?.value ?? 0;
  let displayUrl: string;
  let cluster: ResolvedRedisClientConfig['cluster'];
  let hosts: string[];

  if (topology === 'cluster' && topoLayer?.cluster) {
    if (dbValue !== 0 && db) {
      throw new Problem(
        db.field,
        'is not allowed with cluster: Redis Cluster only has database 0; remove it',
      );
    }
    const nodes = topoLayer.cluster.nodes.map((n) => ({ host: n.host, port: n.port }));
    const nodeOptions: Obj = { ...(redisOptions as Obj) };
    for (const key of CLUSTER_NODE_FORBIDDEN) delete nodeOptions[key];
    const clusterOptions: ClusterOptions = {
      enableReadyCheck: true,
      ...(topoLayer.cluster.options as ClusterOptions),
      enableOfflineQueue: false,
      lazyConnect: true,
      clusterRetryStrategy: (times: number) => reconnectDelay(times, maxReconnectDelay),
      redisOptions: nodeOptions as ClusterOptions['redisOptions'],
    };
    cluster = { nodes, options: clusterOptions };
    hosts = nodes.map((n) => n.host);
    displayUrl = `${scheme}://${userinfo}${nodes.map(hostPort).join(',')}`;
    return done(nodeOptions as RedisOptions);
  }

  if (topology === 'sentinel' && topoLayer?.sentinels) {
    if (sentinelName === undefined) {
      throw new Problem(
        topoLayer.label('name'),
        'is required with sentinels: set the Sentinel master group name (e.g. "mymaster")',
      );
    }
    redisOptions.sentinels = topoLayer.sentinels.map((n) => ({ host: n.host, port: n.port }));
    redisOptions.name = sentinelName;
    redisOptions.db = dbValue;
    if (sentinelUsername !== undefined) redisOptions.sentinelUsername = sentinelUsername;
    if (sentinelPassword !== undefined) redisOptions.sentinelPassword = sentinelPassword;
    if (tlsOn) redisOptions.enableTLSForSentinelMode = true;
    hosts = topoLayer.sentinels.map((n) => n.host);
    displayUrl =
      `${scheme}+sentinel://${userinfo}${topoLayer.sentinels.map(hostPort).join(',')}/${encode(sentinelName)}` +
      (dbValue !== 0 ? `/${dbValue}` : '');
    return done(redisOptions);
  }

  redisOptions.host = host;
  redisOptions.port = port;
  redisOptions.db = dbValue;
  hosts = [host];
  displayUrl = `${scheme}://${userinfo}${hostPort({ host, port })}${dbValue !== 0 ? `/${dbValue}` : ''}`;
  return done(redisOptions);

  function done(finalRedisOptions: RedisOptions): ResolvedRedisClientConfig {
    const resolved: ResolvedRedisClientConfig = {
      name,
      topology,
      displayUrl,
      secrets,
      commandTimeout,
      connectTimeout,
      maxRetries,
      maxReconnectDelay,
      breaker,
      healthCheck,
      pool,
      fallback,
      redisOptions: finalRedisOptions,
      insecureRemote: !tlsOn && hosts.some((h) => !isLoopbackHost(h)),
    };
    if (cluster) resolved.cluster = cluster;
    return resolved;
  }
}

/** Validates one client's options (or the environment's) into a layer. Field names come from `label`. */
function checkClient(raw: Obj, label: Label): Layer {
  const layer: Layer = {
    label,
    tls: {},
    scalars: {},
    sections: { breaker: {}, healthCheck: {}, pool: {}, fallback: {} },
  };

  let url: UrlParts | undefined;
  if (raw.url !== undefined) url = parseRedisUrl(raw.url, label('url'));
  const fromUrl = <T>(value: T | undefined): Sourced<T> | undefined =>
    value === undefined ? undefined : { value, field: label('url') };
  const own = <T>(value: T | undefined, key: string): Sourced<T> | undefined =>
    value === undefined ? undefined : { value, field: label(key) };

  layer.host = own(checkHost(raw.host, label('host')), 'host') ?? fromUrl(url?.host);
  layer.port = own(int(raw.port, label('port'), 'port'), 'port') ?? fromUrl(url?.port);
  layer.db = own(int(raw.db, label('db'), 'db'), 'db') ?? fromUrl(url?.db);
  layer.username = own(str(raw.username, label('username')), 'username') ?? fromUrl(url?.username);
  layer.password = own(str(raw.password, label('password')), 'password') ?? fromUrl(url?.password);

  if (raw.tls !== undefined) {
    const tls = object(raw.tls, label('tls'), 'must be an object ({} for TLS with the system CAs)');
    rejectUnknownKeys(tls, TLS_KEYS, label('tls') + '.');
    for (const key of ['ca', 'cert', 'key'] as const) {
      const value = tls[key];
      if (value === undefined) continue;
      if (typeof value !== 'string' && !(value instanceof Uint8Array)) {
        throw new Problem(
          label(`tls.${key}`),
          `must be PEM text (a string or Buffer); got ${describe(value)}`,
        );
      }
      layer.tls[key] = value as string | Buffer;
    }
    const servername = str(tls.servername, label('tls.servername'));
    if (servername !== undefined) layer.tls.servername = servername;
    const reject = bool(tls.rejectUnauthorized, label('tls.rejectUnauthorized'));
    if (reject !== undefined) layer.tls.rejectUnauthorized = reject;
  }
  layer.tlsOn = raw.tls !== undefined ? true : url?.tls;

  if (raw.sentinels !== undefined) layer.sentinels = nodeList(raw.sentinels, label('sentinels'));
  layer.name = str(raw.name, label('name')) || undefined;
  layer.sentinelUsername = str(raw.sentinelUsername, label('sentinelUsername'));
  layer.sentinelPassword = str(raw.sentinelPassword, label('sentinelPassword'));

  if (raw.cluster !== undefined) {
    const cluster = object(raw.cluster, label('cluster'), 'must be an object: { nodes: ["host:port", …] }');
    rejectUnknownKeys(cluster, CLUSTER_KEYS, label('cluster') + '.');
    if (cluster.nodes === undefined) {
      throw new Problem(label('cluster.nodes'), 'is required: list at least one seed node ("host:port")');
    }
    const nodes = nodeList(cluster.nodes, label('cluster.nodes'));
    let clusterOptions: Obj = {};
    if (cluster.options !== undefined) {
      clusterOptions = object(
        cluster.options,
        label('cluster.options'),
        'must be an object of ioredis ClusterOptions',
      );
      if (clusterOptions.redisOptions !== undefined) {
        throw new Problem(
          label('cluster.options.redisOptions'),
          'is not supported: put per-node ioredis options in redisOptions',
        );
      }
    }
    if (layer.sentinels) {
      throw new Problem(label('cluster'), 'cannot be combined with sentinels: choose one topology');
    }
    layer.cluster = { nodes, options: clusterOptions };
  }

  for (const key of ['connectTimeout', 'commandTimeout', 'maxRetries', 'maxReconnectDelay'] as const) {
    layer.scalars[key] = int(raw[key], label(key), key);
  }

  for (const s of Object.keys(SECTIONS) as Section[]) {
    if (raw[s] === undefined) continue;
    const section = object(raw[s], label(s), `must be an object of ${s} options`);
    rejectUnknownKeys(section, SECTIONS[s], label(s) + '.');
    for (const key of SECTIONS[s]) {
      const path = `${s}.${key}`;
      layer.sections[s][key] =
        key === 'enabled'
          ? bool(section[key], label(path))
          : path === 'breaker.resetJitter'
            ? real(section[key], label(path), path)
            : int(section[key], label(path), path);
    }
  }

  if (raw.redisOptions !== undefined) {
    layer.redisOptions = object(
      raw.redisOptions,
      label('redisOptions'),
      'must be an object of ioredis options',
    );
  }
  return layer;
}

function readEnvRaw(source: unknown, field = 'env'): { raw: RedisEnvOptions; layer: Layer } {
  const env = object(source, field, 'must be an object of environment variables (like process.env)');
  const raw: Obj = {};
  for (const spec of ENV) {
    const value = env[spec.name];
    if (value === undefined) continue;
    if (typeof value !== 'string') throw new Problem(spec.name, `must be a string; got ${describe(value)}`);
    if (value.trim() === '') continue;
    setPath(raw, spec.field, parseEnvValue(spec, value));
  }
  if (raw.sentinels !== undefined && raw.cluster !== undefined) {
    throw new Problem('REDIS_CLUSTER_NODES', 'cannot be combined with REDIS_SENTINELS: set only one of them');
  }
  const label: Label = (path) => envName(path);
  const layer = checkClient(raw, label);
  checkKeyPrefix(raw.keyPrefix, 'REDIS_KEY_PREFIX');
  return { raw: raw as RedisEnvOptions, layer };
}

function parseEnvValue(spec: EnvSpec, value: string): unknown {
  const v = value.trim();
  switch (spec.kind) {
    case 'url':
    case 'string':
      return spec.kind === 'url' ? v : value;
    case 'int': {
      if (!/^[+-]?\d{1,16}$/.test(v)) {
        throw new Problem(spec.name, `must be an integer${limitText(spec.field)}; got something else`);
      }
      return Number(v);
    }
    case 'bool': {
      const lower = v.toLowerCase();
      if (['true', '1', 'yes'].includes(lower)) return true;
      if (['false', '0', 'no'].includes(lower)) return false;
      throw new Problem(spec.name, 'must be true/false, 1/0 or yes/no');
    }
    case 'nodes':
      return v.split(',').map((part, i) => parseHostPort(part.trim(), `${spec.name} (entry ${i + 1})`));
    case 'file':
      try {
        return readFileSync(v);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException)?.code ?? 'unreadable';
        throw new Problem(
          spec.name,
          `names a file that cannot be read: ${quote(v)} (${code}); check the path and its permissions`,
        );
      }
  }
}

function envName(path: string): string {
  const clean = path.replace(/\[.*$/, '');
  for (let p = clean; p !== ''; p = p.includes('.') ? p.slice(0, p.lastIndexOf('.')) : '') {
    const spec = ENV.find((e) => e.field === p);
    if (spec) return spec.name;
  }
  return path;
}

function parseRedisUrl(value: unknown, field: string): UrlParts {
  if (typeof value !== 'string') {
    throw new Problem(field, `must be a string such as redis://127.0.0.1:6379; got ${describe(value)}`);
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Problem(
      field,
      // Not echoed: an unparsable value may be a password pasted into the wrong place.
      'is not a valid URL; the form is redis://host:port/db (rediss:// for TLS), with "user:password@" ' +
        'before the host when needed and special characters in them percent-encoded',
    );
  }
  const protocol = url.protocol.toLowerCase();
  if (protocol !== 'redis:' && protocol !== 'rediss:') {
    throw new Problem(field, `has the scheme ${quote(protocol)}; use redis:// or rediss:// (TLS)`);
  }
  if (url.search !== '' || url.hash !== '') {
    throw new Problem(field, 'must not have a query string or fragment; set those settings as options');
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (host === '') throw new Problem(field, 'has no host; use redis://host:port');
  const parts: UrlParts = { tls: protocol === 'rediss:', host };
  if (url.port !== '') parts.port = checkRange(Number(url.port), field, 'port');
  try {
    if (url.username !== '') parts.username = decodeURIComponent(url.username);
    if (url.password !== '') parts.password = decodeURIComponent(url.password);
  } catch {
    throw new Problem(
      field,
      'has a malformed percent-encoding in the user name or password; encode % as %25',
    );
  }
  const path = url.pathname;
  if (path !== '' && path !== '/') {
    const m = /^\/(\d{1,2})\/?$/.exec(path);
    if (!m) throw new Problem(field, 'has an invalid database path; use /0 to /15 (or no path for 0)');
    parts.db = checkRange(Number(m[1]), field, 'db');
  }
  return parts;
}

function parseHostPort(text: string, field: string): RedisClusterNode {
  let host: string;
  let port: string | undefined;
  const bracket = /^\[([^\]]*)\](?::(.*))?$/.exec(text);
  if (bracket) {
    host = bracket[1];
    port = bracket[2];
    if (isIP(host) !== 6)
      throw new Problem(field, 'has brackets around something that is not an IPv6 address');
  } else {
    const colons = text.split(':').length - 1;
    if (colons > 1) throw new Problem(field, 'must be "host:port"; write IPv6 addresses as "[::1]:6379"');
    [host, port] = colons === 1 ? (text.split(':') as [string, string]) : [text, undefined];
  }
  if (port === undefined || !/^\d{1,5}$/.test(port)) {
    throw new Problem(field, 'must be "host:port" with a port from 1 to 65535');
  }
  return { host: checkHost(host, field) as string, port: checkRange(Number(port), field, 'port') };
}

function nodeList(value: unknown, field: string): RedisClusterNode[] {
  if (!Array.isArray(value)) {
    throw new Problem(
      field,
      `must be an array of addresses ({ host, port } or "host:port"); got ${describe(value)}`,
    );
  }
  if (value.length === 0) throw new Problem(field, 'must list at least one address');
  return value.map((item: unknown, i) => {
    const at = `${field}[${i}]`;
    if (typeof item === 'string') return parseHostPort(item.trim(), at);
    const node = object(item, at, 'must be { host, port } or "host:port"');
    rejectUnknownKeys(node, NODE_KEYS, at + '.');
    if (node.host === undefined) throw new Problem(`${at}.host`, 'is required');
    if (node.port === undefined) throw new Problem(`${at}.port`, 'is required (1–65535)');
    return {
      host: checkHost(node.host, `${at}.host`) as string,
      port: int(node.port, `${at}.port`, 'port') as number,
    };
  });
}

function checkHost(value: unknown, field: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string')
    throw new Problem(field, `must be a host name or IP address; got ${describe(value)}`);
  const host = value.replace(/^\[(.*)\]$/, '$1');
  if (host === '') throw new Problem(field, 'must not be empty; set a host name or IP address');
  if (/[\s/@?#]/.test(host) || host.replace(CONTROL_CHARS, '') !== host) {
    throw new Problem(
      field,
      'must be a bare host name or IP address (no scheme, credentials, path or spaces)',
    );
  }
  if (host.includes(':') && isIP(host) !== 6) {
    throw new Problem(field, 'must not contain ":"; set the port with port');
  }
  return host;
}

function checkKeyPrefix(value: unknown, field: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !KEY_PREFIX.test(value)) {
    throw new Problem(
      field,
      'must be 1–64 letters, digits, _, . or - (it starts every Redis key Redwing writes)',
    );
  }
  return value;
}

function int(value: unknown, field: string, limitKey: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new Problem(field, `must be an integer${limitText(limitKey)}; got ${describe(value)}`);
  }
  return checkRange(value, field, limitKey);
}

function real(value: unknown, field: string, limitKey: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new Problem(field, `must be a number${limitText(limitKey)}; got ${describe(value)}`);
  }
  return checkRange(value, field, limitKey);
}

function checkRange(value: number, field: string, limitKey: string): number {
  const [min, max] = LIMITS[limitKey];
  if (!(value >= min && value <= max)) {
    throw new Problem(field, `must be${limitText(limitKey)}; got ${value}`);
  }
  return value;
}

function limitText(limitKey: string): string {
  const limit = LIMITS[limitKey];
  return limit ? ` from ${limit[0]} to ${limit[1]}${limit[2]}` : '';
}

function bool(value: unknown, field: string): boolean | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'boolean') throw new Problem(field, `must be true or false; got ${describe(value)}`);
  return value;
}

function str(value: unknown, field: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new Problem(field, `must be a string; got ${describe(value)}`);
  return value;
}

function object(value: unknown, field: string, message: string): Obj {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) {
    throw new Problem(field, `${message}; got ${describe(value)}`);
  }
  return value as Obj;
}

function rejectUnknownKeys(obj: Obj, known: readonly string[], prefix: string, elsewhere?: string[]) {
  for (const key of Object.keys(obj)) {
    if (known.includes(key)) continue;
    const field = /^[A-Za-z_$][\w$-]*$/.test(key)
      ? prefix + key
      : `${prefix.replace(/\.$/, '')}[${JSON.stringify(sanitize(key).slice(0, 40))}]`;
    if (elsewhere?.includes(key)) {
      throw new Problem(
        field,
        'is an unknown option here: it is set once, at the top level of the module options',
      );
    }
    const hint = closest(key, known);
    throw new Problem(
      field,
      `is an unknown option${hint ? `; did you mean ${hint}?` : '; remove it (see the options table in the @redwing/redis README)'}`,
    );
  }
}

function closest(key: string, candidates: readonly string[]): string | undefined {
  if (key.length > 64) return undefined;
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const d = candidate.toLowerCase() === key.toLowerCase() ? 0 : editDistance(key, candidate);
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  const allowed = key.length <= 4 ? 1 : key.length <= 8 ? 2 : 3;
  return bestDistance <= allowed ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length];
}

function first<T>(values: Array<T | undefined>): T | undefined {
  return values.find((v) => v !== undefined);
}

function setPath(target: Obj, path: string, value: unknown): void {
  const keys = path.split('.');
  let node = target;
  for (const key of keys.slice(0, -1)) node = (node[key] ??= {}) as Obj;
  node[keys[keys.length - 1]] = value;
}

function hostPort(node: RedisClusterNode): string {
  return `${node.host.includes(':') ? `[${node.host}]` : node.host}:${node.port}`;
}

function encodeUser(username: string | undefined): string {
  return username ? encode(username) : '';
}

function encode(text: string): string {
  try {
    return encodeURIComponent(text);
  } catch {
    return encodeURIComponent(text.replace(/[\uD800-\uDFFF]/g, '\uFFFD'));
  }
}

/** Describes a rejected value without echoing strings (they may be secrets). */
function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  switch (typeof value) {
    case 'number':
    case 'boolean':
      return String(value);
    case 'string':
      return 'a string';
    case 'object':
      return 'an object';
    default:
      return `a ${typeof value}`;
  }
}

/** Quotes user text for a message: control characters removed, at most 80 characters. */
function quote(text: string): string {
  const clean = sanitize(text);
  return JSON.stringify(clean.length > 80 ? `${clean.slice(0, 77)}...` : clean);
}

function sanitize(text: string): string {
  return String(text).replace(CONTROL_CHARS, '?').slice(0, 120);
}

/** Every password the input might carry, found without validating anything (never throws). */
function collectSecrets(input: unknown): string[] {
  const found = new Set<string>();
  const add = (value: unknown) => {
    if (typeof value === 'string' && value !== '') found.add(value);
  };
  const fromUrl = (url: unknown) => {
    if (typeof url !== 'string') return;
    const at = url.lastIndexOf('@');
    const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(url);
    const start = scheme ? scheme[0].length : 0;
    if (at < start) return;
    const userinfo = url.slice(start, at);
    const colon = userinfo.indexOf(':');
    if (colon === -1 && scheme) return;
    const secret = userinfo.slice(colon + 1);
    add(secret);
    try {
      add(decodeURIComponent(secret));
    } catch {}
  };
  const fromClient = (client: unknown) => {
    if (typeof client !== 'object' || client === null) return;
    const c = client as Obj;
    add(c.password);
    add(c.sentinelPassword);
    fromUrl(c.url);
    if (typeof c.redisOptions === 'object' && c.redisOptions !== null) {
      add((c.redisOptions as Obj).password);
      add((c.redisOptions as Obj).sentinelPassword);
    }
    const nodes = (c.cluster as Obj | undefined)?.nodes;
    if (Array.isArray(nodes)) nodes.forEach(fromUrl);
  };
  try {
    fromClient(input);
    if (typeof input === 'object' && input !== null) {
      const top = input as Obj;
      if (typeof top.clients === 'object' && top.clients !== null)
        Object.values(top.clients).forEach(fromClient);
      const env = (top.useEnv !== false ? (top.env ?? process.env) : undefined) as Obj | undefined;
      if (typeof env === 'object' && env !== null) {
        add(env.REDIS_PASSWORD);
        add(env.REDIS_SENTINEL_PASSWORD);
        fromUrl(env.REDIS_URL);
        if (typeof env.REDIS_CLUSTER_NODES === 'string') env.REDIS_CLUSTER_NODES.split(',').forEach(fromUrl);
      }
    }
  } catch {}
  return [...found];
}

function toConfigError(err: unknown, secrets: string[]): RedisConfigError {
  if (err instanceof Problem) {
    return new RedisConfigError(redactText(err.field, secrets), redactText(err.message, secrets));
  }
  // Not echoed: whatever a throwing getter or proxy said may hold a secret we do not know about.
  const what = err instanceof Error ? sanitize(err.name).slice(0, 40) : typeof err;
  return new RedisConfigError(
    'options',
    `could not be read (reading them threw ${what}); pass plain objects of the documented options`,
  );
}
