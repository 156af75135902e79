import { quoteValue } from '../config-kit';
import { redactText } from '../redact';
import { RedisConfigError } from '../redis.errors';
import { ConfigProblem, type Obj } from './config-problem';

/**
 * Every password the input might carry (options, named clients, `REDIS_*` variables), found without
 * validating anything, so error messages can be scrubbed before they leave. Never throws.
 * @internal
 */
export function collectSecrets(input: unknown): string[] {
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
      if (typeof top.clients === 'object' && top.clients !== null) {
        Object.values(top.clients).forEach(fromClient);
      }
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

/**
 * The `RedisConfigError` for whatever validation threw, with every secret scrubbed from field and message.
 * @internal
 */
export function toConfigError(err: unknown, secrets: string[]): RedisConfigError {
  if (err instanceof ConfigProblem) {
    return new RedisConfigError(redactText(err.field, secrets), redactText(err.message, secrets));
  }
  // Not echoed: whatever a throwing getter or proxy said may hold a secret we do not know about.
  const what = err instanceof Error ? quoteValue(String(err.name).slice(0, 40)) : typeof err;
  return new RedisConfigError(
    'options',
    `could not be read (reading them threw ${what}); pass plain objects of the documented options`,
  );
}
