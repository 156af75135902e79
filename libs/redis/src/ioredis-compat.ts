import { Cluster, type Redis } from 'ioredis';

/**
 * Differences between ioredis 5 and 6 that need code (docs/compatibility.md). Everything else the libs use
 * behaves the same on both majors (pinned by ioredis-compat.int-spec.ts).
 *
 * ioredis 5, Cluster with `enableAutoPipelining`: the auto-pipeline is chosen by the slot of the command's
 * FIRST ARGUMENT, not of its first key (ioredis 6 looks the key up). For EVALSHA/EVAL that is the SHA or the
 * script text, so a script call joins the pipeline of an unrelated slot and the whole pipeline fails with
 * "All keys in the pipeline should belong to the same slots allocation group". Those commands are sent
 * outside the auto-pipeline on ioredis 5 instead (`autoPipeliningIgnoredCommands`, read on every call).
 */

/** Commands whose first key is not their first argument (the ones the libs send, or may send). */
export const KEY_NOT_FIRST_COMMANDS = [
  'eval',
  'evalsha',
  'eval_ro',
  'evalsha_ro',
  'fcall',
  'fcall_ro',
  'xread',
  'xreadgroup',
] as const;

let major: number | undefined;

/** The major version of the ioredis this process resolves (5 or 6; 0 when it cannot be read). */
export function ioredisMajor(): number {
  if (major === undefined) {
    try {
      const pkg = require('ioredis/package.json') as { version?: string };
      major = Number.parseInt(pkg.version ?? '', 10) || 0;
    } catch {
      major = 0;
    }
  }
  return major;
}

/**
 * Make a connection safe for what the libs send, on the ioredis major in use. Idempotent; a no-op on
 * ioredis 6 and on standalone connections. Call it on every Cluster connection the libs create or are given.
 * @internal
 */
export function applyIoredisCompat(conn: Redis | Cluster, version = ioredisMajor()): void {
  if (version !== 5 || !(conn instanceof Cluster)) return;
  const options = conn.options as {
    enableAutoPipelining?: boolean;
    autoPipeliningIgnoredCommands?: string[];
  };
  if (!options.enableAutoPipelining) return;
  const ignored = options.autoPipeliningIgnoredCommands ?? [];
  const missing = KEY_NOT_FIRST_COMMANDS.filter((c) => !ignored.includes(c));
  if (missing.length) options.autoPipeliningIgnoredCommands = [...ignored, ...missing];
}

/** The commands ioredis sends by itself after a reconnect to restore a subscriber connection's state. */
const RESTORE_COMMANDS = ['subscribe', 'psubscribe', 'ssubscribe', 'select'] as const;
const RESTORE_GUARDED = Symbol('redwing.ioredis.restoreGuarded');

/**
 * ioredis before 6.1.0 restores a subscriber connection after a reconnect (SELECT, then SUBSCRIBE /
 * PSUBSCRIBE / SSUBSCRIBE of every channel it had) without a rejection handler. When that fails — the
 * connection drops again, is closed at shutdown ("Connection is closed."), or an ACL now refuses a channel
 * (NOPERM) — the rejection is unhandled, which ends a Node 15+ process. Every call of those commands on `conn`
 * gets a no-op handler attached; the promise returned to a caller is the same one, so callers still see the
 * rejection. Idempotent; harmless on ioredis 6.1+, which handles them itself (ioredis PR #2187).
 * @internal
 */
export function handleRestoreRejections(conn: Redis): void {
  const marked = conn as Redis & { [RESTORE_GUARDED]?: true };
  if (marked[RESTORE_GUARDED]) return;
  marked[RESTORE_GUARDED] = true;
  const methods = conn as unknown as Record<string, (...args: unknown[]) => unknown>;
  for (const name of RESTORE_COMMANDS) {
    const original = methods[name];
    if (typeof original !== 'function') continue;
    methods[name] = function (this: Redis, ...args: unknown[]): unknown {
      const result = original.apply(this, args);
      if (result instanceof Promise) result.catch(() => undefined);
      return result;
    };
  }
}
