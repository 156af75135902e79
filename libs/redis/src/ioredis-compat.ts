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

type Method = (this: Redis, ...args: unknown[]) => unknown;

/** Replace each method `names` of `conn` with `wrap(original)`, once per `marker` (the wrappers are idempotent). */
function wrapMethodsOnce(
  conn: Redis,
  marker: symbol,
  names: readonly string[],
  wrap: (original: Method) => Method,
): void {
  const marked = conn as unknown as Record<symbol, true | undefined>;
  if (marked[marker]) return;
  marked[marker] = true;
  const methods = conn as unknown as Record<string, Method>;
  for (const name of names) {
    const original = methods[name];
    if (typeof original === 'function') methods[name] = wrap(original);
  }
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
  wrapMethodsOnce(
    conn,
    RESTORE_GUARDED,
    RESTORE_COMMANDS,
    (original) =>
      function (this: Redis, ...args: unknown[]): unknown {
        const result = original.apply(this, args);
        if (result instanceof Promise) result.catch(() => undefined);
        return result;
      },
  );
}

const HANDSHAKE_GUARDED = Symbol('redwing.ioredis.handshakeGuarded');
const HELD_COMMANDS = [
  'subscribe',
  'psubscribe',
  'ssubscribe',
  'unsubscribe',
  'punsubscribe',
  'sunsubscribe',
] as const;

/**
 * ioredis 5 writes a SUBSCRIBE (PSUBSCRIBE, SSUBSCRIBE) called while the connection is in its `connect`
 * handshake straight to the socket, because Redis allows it while loading. It then reaches Redis before the
 * ready check's INFO, which Redis refuses in subscriber context; ioredis takes that for a failed ready check
 * and reconnects, and since the connection never was `ready` it does not restore the subscription: the
 * channel is lost without a word, while the caller's promise has resolved (seen as a pub/sub test that got
 * 1 of 20 messages on ioredis 5 under load). ioredis 6 keeps user commands queued until the handshake ends.
 * On ioredis 5 such calls on `conn` (and the unsubscribes) wait for its `ready` (or its `end`, where the call
 * then fails as usual).
 * Idempotent. @internal
 */
export function holdSubscribesDuringHandshake(conn: Redis): void {
  if (ioredisMajor() !== 5) return;
  let gate: Promise<void> | undefined;
  const settled = () =>
    (gate ??= new Promise<void>((resolve) => {
      const open = () => {
        conn.off('ready', open);
        conn.off('end', open);
        gate = undefined;
        resolve();
      };
      conn.on('ready', open);
      conn.on('end', open);
    }));
  // The unsubscribes wait too, so a subscribe and an unsubscribe made in the window reach Redis in call order.
  wrapMethodsOnce(
    conn,
    HANDSHAKE_GUARDED,
    HELD_COMMANDS,
    (original) =>
      function (this: Redis, ...args: unknown[]): unknown {
        if (conn.status !== 'connect') return original.apply(this, args);
        return settled().then(() => original.apply(this, args));
      },
  );
}

const STREAM_GUARDED = Symbol('redwing.ioredis.streamGuarded');

interface Connector {
  connect(...args: unknown[]): Promise<unknown>;
}

/**
 * ioredis listens for a socket's errors with `once('error')` (its connector for the first error, the client
 * once it has the socket). A socket that emits a second error — a TLS socket that fails verification and then
 * reads the server's alert, under load — has no listener left, and an `error` event without a listener is an
 * uncaught exception that ends the process. Every socket `conn` opens gets a permanent no-op listener; ioredis's
 * own listeners still see the errors they listen for, and the socket's close still drives the reconnect.
 * Idempotent; standalone and Sentinel connections, and each node connection of a Cluster (on its `+node`).
 * @internal
 */
export function guardStreamErrors(conn: Redis): void {
  // `connector` is private in ioredis's types: read it through a plain shape.
  const marked = conn as unknown as { [STREAM_GUARDED]?: true; connector?: Connector };
  const connector = marked.connector;
  if (marked[STREAM_GUARDED] || !connector || typeof connector.connect !== 'function') return;
  marked[STREAM_GUARDED] = true;
  const original = connector.connect.bind(connector);
  connector.connect = (...args: unknown[]) =>
    original(...args).then((stream: unknown) => {
      (stream as { on?: (event: 'error', listener: () => void) => unknown }).on?.('error', ignoreError);
      return stream;
    });
}

const ignoreError = (): void => undefined;
