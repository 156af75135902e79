import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { applyIoredisCompat } from './ioredis-compat';
import { RedisScriptError } from './redis.errors';

/**
 * A Lua script as a lib declares it in `scripts/<verb-noun>.script.ts`. `Reply` is the type the script
 * returns on success (phantom: it only types the caller).
 */
export interface LuaScript<Reply = unknown> {
  /** Lib-prefixed name, used in errors and traces (e.g. `lockRelease`). */
  readonly name: string;
  /** How many of the arguments are keys (all in one hash slot on Cluster). */
  readonly numberOfKeys: number;
  readonly lua: string;
  /**
   * The script's negative failure codes and what each means. A reply equal to one of them, or an array
   * reply whose first element is, throws {@link RedisScriptError}; any other negative number throws too
   * when a table is given.
   */
  readonly codes?: Readonly<Record<number, string>>;
  /** Type carrier only (never set): keeps `Reply` in the type, so it must stay in the .d.ts. */
  readonly __reply?: Reply;
}

/** One argument of a script call. */
export type ScriptArg = string | number | Buffer;

/** A typed caller of one script: `keys` must have exactly the script's `numberOfKeys` entries. */
export type ScriptCaller<Reply> = (keys: readonly string[], args?: readonly ScriptArg[]) => Promise<Reply>;

/** The callers `defineScripts()` returns, one per script, by the same property names. */
export type ScriptCallers<S> = {
  readonly [K in keyof S]: S[K] extends LuaScript<infer R> ? ScriptCaller<R> : never;
};

/**
 * Declare a script with its reply type.
 * @example
 * export const releaseLockScript = luaScript<0 | 1>({ name: 'lockRelease', numberOfKeys: 1, lua: `…` });
 */
export function luaScript<Reply>(script: Omit<LuaScript<Reply>, '__reply'>): LuaScript<Reply> {
  return script;
}

/**
 * Typed callers for a lib's Lua scripts on one connection. Each script's SHA-1 is computed once; a call
 * sends `EVALSHA` and, when the server answers `NOSCRIPT` (first use, restart, failover, another Cluster
 * node), `EVAL` once, which also caches the script there. Nothing is registered on the connection with
 * `defineCommand`, so it is safe at any time, even while an auto-pipeline is pending (ioredis throws
 * from `defineCommand` then) and on a connection shared by several libs.
 * @example
 * const scripts = defineScripts(client.connection, { release: releaseLockScript });
 * const released = await scripts.release([key], [token]); // typed 0 | 1
 * @throws RedisScriptError (from a caller) when the script answers one of its negative `codes`
 */
export function defineScripts<S extends Record<string, LuaScript<any>>>(
  connection: Redis | Cluster,
  scripts: S,
): ScriptCallers<S> {
  // ioredis 5 auto-pipelines Cluster script calls by the SHA's slot, not the key's (docs/compatibility.md).
  applyIoredisCompat(connection);
  const callers: Record<string, ScriptCaller<unknown>> = {};
  for (const [property, script] of Object.entries(scripts)) {
    callers[property] = scriptCaller(connection, script);
  }
  return callers as ScriptCallers<S>;
}

function scriptCaller(connection: Redis | Cluster, script: LuaScript): ScriptCaller<unknown> {
  const sha = createHash('sha1').update(script.lua).digest('hex');
  const { name, numberOfKeys, lua, codes } = script;
  // Until a reply shows the script is cached on the server, one call finds out (EVALSHA, then EVAL on
  // NOSCRIPT) while the calls made meanwhile wait for it: a burst of N first calls then costs N + 1 round
  // trips instead of N NOSCRIPT replies plus N EVALs carrying the whole script (which, at start-up or
  // after a restart, can push a burst past the command timeout).
  let cached = false;
  let probe: Promise<unknown> | undefined;
  const send = async (keys: readonly string[], args: readonly ScriptArg[]): Promise<unknown> => {
    try {
      const reply = await connection.evalsha(sha, numberOfKeys, ...keys, ...args);
      cached = true;
      return reply;
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      cached = false;
      const reply = await connection.eval(lua, numberOfKeys, ...keys, ...args);
      cached = true;
      return reply;
    }
  };
  return async (keys, args = []) => {
    if (keys.length !== numberOfKeys) {
      throw new TypeError(`Redis script "${name}" takes ${numberOfKeys} key(s), got ${keys.length}`);
    }
    let reply: unknown;
    if (cached) {
      reply = await send(keys, args);
    } else if (probe) {
      await probe.catch(() => undefined);
      reply = await send(keys, args);
    } else {
      const first = send(keys, args);
      probe = first;
      try {
        reply = await first;
      } finally {
        probe = undefined;
      }
    }
    if (codes) checkCode(name, codes, reply);
    return reply;
  };
}

function checkCode(name: string, codes: Readonly<Record<number, string>>, reply: unknown): void {
  const code = Array.isArray(reply) ? reply[0] : reply;
  if (typeof code !== 'number' || code >= 0) return;
  throw new RedisScriptError(name, code, codes[code] ?? 'an undocumented failure code');
}
