import { readFileSync } from 'node:fs';
import { quoteValue, type EnvOption } from '../config-kit';
import type { RedisClientModuleOptions, RedisClientOptions } from '../redis.interfaces';
import { checkClient, checkKeyPrefix, type Layer } from './client-layer';
import { check, ConfigProblem, LIMITS } from './config-problem';
import { parseHostPort } from './redis-address';

/** What `readRedisEnv` returns: client options plus the module-wide key prefix. */
export type RedisEnvOptions = RedisClientOptions & Pick<RedisClientModuleOptions, 'keyPrefix'>;

/** Kept as written: passwords and names may carry meaningful spaces. */
const verbatim = (_text: string, raw: string): string => raw;
const nodes = (name: string) => (text: string) =>
  text.split(',').map((part, i) => parseHostPort(part.trim(), `${name} (entry ${i + 1})`));
const file = (name: string) => (path: string) => {
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException)?.code ?? 'unreadable';
    throw new ConfigProblem(
      name,
      `names a file that cannot be read: ${quoteValue(path)} (${code}); check the path and its permissions`,
    );
  }
};

// prettier-ignore
const ENV: readonly EnvOption[] = [
  { name: 'REDIS_URL', field: 'url', kind: 'string', description: 'Address: `redis://[user:password@]host[:port][/db]`, `rediss://` for TLS', default: '`redis://127.0.0.1:6379`' },
  { name: 'REDIS_USERNAME', field: 'username', kind: 'string', parse: verbatim, description: 'ACL user name (overrides the one in `REDIS_URL`)', default: '—' },
  { name: 'REDIS_PASSWORD', field: 'password', kind: 'string', parse: verbatim, description: 'Password (overrides the one in `REDIS_URL`); never logged', default: '—' },
  { name: 'REDIS_TLS_CA_FILE', field: 'tls.ca', kind: 'string', parse: file('REDIS_TLS_CA_FILE'), description: 'Path of a PEM CA bundle; turns TLS on', default: 'system CAs' },
  { name: 'REDIS_TLS_CERT_FILE', field: 'tls.cert', kind: 'string', parse: file('REDIS_TLS_CERT_FILE'), description: 'Path of a PEM client certificate (mutual TLS); turns TLS on', default: '—' },
  { name: 'REDIS_TLS_KEY_FILE', field: 'tls.key', kind: 'string', parse: file('REDIS_TLS_KEY_FILE'), description: 'Path of the PEM client private key (mutual TLS); turns TLS on', default: '—' },
  { name: 'REDIS_TLS_SERVERNAME', field: 'tls.servername', kind: 'string', parse: verbatim, description: 'SNI name checked against the certificate; turns TLS on', default: 'the host' },
  { name: 'REDIS_TLS_REJECT_UNAUTHORIZED', field: 'tls.rejectUnauthorized', kind: 'bool', description: '`false` accepts an unverified certificate (audit warning); turns TLS on', default: '`true`' },
  { name: 'REDIS_SENTINELS', field: 'sentinels', kind: 'list', parse: nodes('REDIS_SENTINELS'), description: 'Sentinel addresses `host:port,host:port`; selects Sentinel', default: '—' },
  { name: 'REDIS_SENTINEL_NAME', field: 'name', kind: 'string', parse: verbatim, description: 'Sentinel master group name', default: '—' },
  { name: 'REDIS_SENTINEL_PASSWORD', field: 'sentinelPassword', kind: 'string', parse: verbatim, description: 'Password of the Sentinels; never logged', default: '—' },
  { name: 'REDIS_CLUSTER_NODES', field: 'cluster.nodes', kind: 'list', parse: nodes('REDIS_CLUSTER_NODES'), description: 'Cluster seed nodes `host:port,host:port`; selects Cluster', default: '—' },
  { name: 'REDIS_CONNECT_TIMEOUT', field: 'connectTimeout', kind: 'int', range: LIMITS.connectTimeout, description: 'Time to connect (TCP + TLS), ms', default: '`5000`' },
  { name: 'REDIS_COMMAND_TIMEOUT', field: 'commandTimeout', kind: 'int', range: LIMITS.commandTimeout, description: 'Longest any command may take, ms', default: '`1000`' },
  { name: 'REDIS_MAX_RETRIES', field: 'maxRetries', kind: 'int', range: LIMITS.maxRetries, description: 'Reconnects an unsent command may wait for (within its timeout)', default: '`0`' },
  { name: 'REDIS_MAX_RECONNECT_DELAY', field: 'maxReconnectDelay', kind: 'int', range: LIMITS.maxReconnectDelay, description: 'Upper bound of the reconnect back-off, ms', default: '`2000`' },
  { name: 'REDIS_HEALTH_CHECK_INTERVAL', field: 'healthCheck.interval', kind: 'int', range: LIMITS['healthCheck.interval'], description: 'Time between health PINGs, ms; `0` disables', default: '`2000`' },
  { name: 'REDIS_BREAKER_ENABLED', field: 'breaker.enabled', kind: 'bool', description: 'Circuit breaker on/off', default: '`true`' },
  { name: 'REDIS_BREAKER_FAILURE_RATE', field: 'breaker.failureRateThreshold', kind: 'int', range: LIMITS['breaker.failureRateThreshold'], description: 'Failure percentage (1–100) that opens the breaker', default: '`50`' },
  { name: 'REDIS_BREAKER_SLOW_CALL_RATE', field: 'breaker.slowCallRateThreshold', kind: 'int', range: LIMITS['breaker.slowCallRateThreshold'], description: 'Slow-call percentage (1–100) that opens the breaker', default: '`80`' },
  { name: 'REDIS_BREAKER_SLOW_CALL_DURATION', field: 'breaker.slowCallDuration', kind: 'int', range: LIMITS['breaker.slowCallDuration'], description: 'A call slower than this is slow, ms', default: 'commandTimeout / 2' },
  { name: 'REDIS_BREAKER_WINDOW', field: 'breaker.window', kind: 'int', range: LIMITS['breaker.window'], description: 'Rolling window of the rates, ms', default: '`10000`' },
  { name: 'REDIS_BREAKER_MIN_VOLUME', field: 'breaker.minimumVolume', kind: 'int', range: LIMITS['breaker.minimumVolume'], description: 'Calls the window needs before the rates count', default: '`20`' },
  { name: 'REDIS_BREAKER_RESET_TIMEOUT', field: 'breaker.resetTimeout', kind: 'int', range: LIMITS['breaker.resetTimeout'], description: 'Time open before one probe, ms (jittered)', default: '`5000`' },
  { name: 'REDIS_FALLBACK_ENABLED', field: 'fallback.enabled', kind: 'bool', description: 'In-memory fallback stores on/off', default: '`true`' },
  { name: 'REDIS_FALLBACK_MAX_ENTRIES', field: 'fallback.maxEntries', kind: 'int', range: LIMITS['fallback.maxEntries'], description: 'Most entries one fallback store keeps', default: '`10000`' },
  { name: 'REDIS_FALLBACK_MAX_BYTES', field: 'fallback.maxBytes', kind: 'int', range: LIMITS['fallback.maxBytes'], description: 'Most bytes one fallback store keeps', default: '`16777216`' },
  { name: 'REDIS_KEY_PREFIX', field: 'keyPrefix', kind: 'string', parse: verbatim, description: 'First segment of every key', default: '`redwing`' },
];

/** The `REDIS_*` variables `readRedisEnv` reads: the README table is checked against this list. */
export const REDIS_ENV_VARS: ReadonlyArray<{
  name: string;
  field: string;
  description: string;
  default: string;
}> = ENV.map(({ name, field, description, default: def }) => ({
  name,
  field,
  description: description ?? '',
  default: def ?? '—',
}));

/**
 * The `REDIS_*` variables of `source` as raw options and as a validated layer (errors name the variable).
 * @internal
 */
export function readEnvLayer(source: unknown, field = 'env'): { raw: RedisEnvOptions; layer: Layer } {
  const env = check.object(source, field, 'an object of environment variables (like process.env)');
  const raw = check.env(env, ENV);
  if (raw.sentinels !== undefined && raw.cluster !== undefined) {
    throw new ConfigProblem(
      'REDIS_CLUSTER_NODES',
      'cannot be combined with REDIS_SENTINELS: set only one of them',
    );
  }
  const layer = checkClient(raw, envName);
  checkKeyPrefix(raw.keyPrefix, 'REDIS_KEY_PREFIX');
  return { raw: raw as RedisEnvOptions, layer };
}

/** The variable that sets option `path` (or its closest parent), e.g. `breaker.window` → `REDIS_BREAKER_WINDOW`. */
function envName(path: string): string {
  const clean = path.replace(/\[.*$/, '');
  for (let p = clean; p !== ''; p = p.includes('.') ? p.slice(0, p.lastIndexOf('.')) : '') {
    const spec = ENV.find((e) => e.field === p);
    if (spec) return spec.name;
  }
  return path;
}
