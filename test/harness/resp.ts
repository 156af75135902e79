import * as net from 'node:net';
import * as tls from 'node:tls';

/** An error reply (`-ERR ...`) from Redis. */
export class RespError extends Error {
  override readonly name = 'RespError';
}

/** A decoded RESP2 value. Bulk strings are strings, or Buffers when read with `buffers: true`. */
export type RespValue = string | number | null | Buffer | RespError | RespValue[];

/** A command argument. */
export type RespArg = string | number | Buffer;

const CR = 0x0d;
const STAR = 0x2a;
const INCOMPLETE = Symbol('incomplete');
type Parsed = { value: RespValue; end: number } | typeof INCOMPLETE;

/**
 * Incremental RESP2 reader: push() chunks as they arrive, then call next() (replies) or
 * nextCommandName() (client-to-server traffic) until they return undefined. Throws on a
 * protocol error.
 */
export class RespReader {
  private buf: Buffer = Buffer.alloc(0);

  constructor(private readonly buffers = false) {}

  /** Appends received bytes. */
  push(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
  }

  /** The next complete value, or undefined when more bytes are needed. */
  next(): { value: RespValue } | undefined {
    const parsed = this.parse(0);
    if (parsed === INCOMPLETE) return undefined;
    this.buf = this.buf.subarray(parsed.end);
    return { value: parsed.value };
  }

  /**
   * The upper-cased name of the next complete client command (RESP array or inline command),
   * or undefined when more bytes are needed.
   */
  nextCommandName(): string | undefined {
    for (;;) {
      if (this.buf.length === 0) return undefined;
      if (this.buf[0] !== STAR) {
        // Inline command: "PING\r\n" (telnet style). Blank lines are ignored by Redis too.
        const nl = this.buf.indexOf(0x0a);
        if (nl < 0) return undefined;
        const line = this.buf.toString('utf8', 0, nl).trim();
        this.buf = this.buf.subarray(nl + 1);
        if (line === '') continue;
        return line.split(/\s+/)[0].toUpperCase();
      }
      const parsed = this.parse(0);
      if (parsed === INCOMPLETE) return undefined;
      this.buf = this.buf.subarray(parsed.end);
      const v = parsed.value;
      if (!Array.isArray(v)) throw new Error('RESP: client sent a non-array frame');
      if (v.length === 0) continue;
      const head = v[0];
      return (Buffer.isBuffer(head) ? head.toString('utf8') : String(head)).toUpperCase();
    }
  }

  private line(pos: number): { text: string; next: number } | typeof INCOMPLETE {
    const eol = this.buf.indexOf('\r\n', pos + 1);
    if (eol < 0) return INCOMPLETE;
    return { text: this.buf.toString('utf8', pos + 1, eol), next: eol + 2 };
  }

  private parse(pos: number): Parsed {
    if (pos >= this.buf.length) return INCOMPLETE;
    const type = String.fromCharCode(this.buf[pos]);
    const line = this.line(pos);
    if (line === INCOMPLETE) return INCOMPLETE;
    switch (type) {
      case '+':
        return { value: line.text, end: line.next };
      case '-':
        return { value: new RespError(line.text), end: line.next };
      case ':':
        return { value: Number(line.text), end: line.next };
      case '$': {
        const len = toLength(line.text);
        if (len < 0) return { value: null, end: line.next };
        const end = line.next + len + 2;
        if (this.buf.length < end) return INCOMPLETE;
        if (this.buf[end - 2] !== CR) throw new Error('RESP: bulk string not terminated by CRLF');
        const raw = this.buf.subarray(line.next, line.next + len);
        return { value: this.buffers ? Buffer.from(raw) : raw.toString('utf8'), end };
      }
      case '*': {
        const n = toLength(line.text);
        if (n < 0) return { value: null, end: line.next };
        const items: RespValue[] = [];
        let next = line.next;
        for (let i = 0; i < n; i++) {
          const item = this.parse(next);
          if (item === INCOMPLETE) return INCOMPLETE;
          items.push(item.value);
          next = item.end;
        }
        return { value: items, end: next };
      }
      default:
        throw new Error(`RESP: unexpected type byte ${JSON.stringify(type)}`);
    }
  }
}

function toLength(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < -1) throw new Error(`RESP: bad length ${JSON.stringify(text)}`);
  return n;
}

/** Encodes one command as a RESP array of bulk strings. */
export function encodeCommand(args: readonly RespArg[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const b = Buffer.isBuffer(arg) ? arg : Buffer.from(String(arg), 'utf8');
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/** Where and how to reach a Redis server for harness-internal commands. */
export interface RespEndpoint {
  host: string;
  port: number;
  username?: string;
  password?: string;
  tls?: { ca: string; cert?: string; key?: string };
}

/**
 * Opens a connection, authenticates if needed, sends `commands` pipelined and returns one reply
 * per command (error replies are returned as RespError values, not thrown). Rejects on a
 * connection error, a failed AUTH, or when `timeoutMs` passes.
 */
export function respCall(
  ep: RespEndpoint,
  commands: ReadonlyArray<readonly RespArg[]>,
  opts: { timeoutMs?: number; buffers?: boolean } = {},
): Promise<RespValue[]> {
  const timeoutMs = opts.timeoutMs ?? 2000;
  const frames: Array<readonly RespArg[]> = [];
  const authed = ep.password !== undefined;
  if (authed) frames.push(ep.username ? ['AUTH', ep.username, ep.password!] : ['AUTH', ep.password!]);
  frames.push(...commands);
  const what = commands.map((c) => String(c[0])).join(',');

  return new Promise((resolve, reject) => {
    const reader = new RespReader(opts.buffers);
    const replies: RespValue[] = [];
    let settled = false;
    const socket: net.Socket = ep.tls
      ? tls.connect({
          host: ep.host,
          port: ep.port,
          ca: ep.tls.ca,
          cert: ep.tls.cert,
          key: ep.tls.key,
          servername: net.isIP(ep.host) ? undefined : ep.host,
        })
      : net.connect({ host: ep.host, port: ep.port });
    const finish = (err: Error | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(authed ? replies.slice(1) : replies);
    };
    const timer = setTimeout(
      () => finish(new Error(`${what} on ${ep.host}:${ep.port}: no reply within ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.setNoDelay(true);
    socket.on(ep.tls ? 'secureConnect' : 'connect', () => {
      socket.write(Buffer.concat(frames.map(encodeCommand)));
    });
    socket.on('data', (chunk: Buffer) => {
      try {
        reader.push(chunk);
        for (let r = reader.next(); r; r = reader.next()) {
          replies.push(r.value);
          if (authed && replies.length === 1 && r.value instanceof RespError) {
            finish(new Error(`AUTH failed on ${ep.host}:${ep.port}: ${r.value.message}`));
            return;
          }
        }
      } catch (err) {
        finish(err as Error);
        return;
      }
      if (replies.length >= frames.length) finish(undefined);
    });
    socket.on('error', (err) => finish(new Error(`${what} on ${ep.host}:${ep.port}: ${err.message}`)));
    socket.on('close', () =>
      finish(new Error(`${what} on ${ep.host}:${ep.port}: connection closed before the reply`)),
    );
  });
}

/** Sends one command and returns its reply; an error reply is thrown as RespError. */
export async function respCommand(
  ep: RespEndpoint,
  args: readonly RespArg[],
  opts: { timeoutMs?: number; buffers?: boolean } = {},
): Promise<RespValue> {
  const [reply] = await respCall(ep, [args], opts);
  if (reply instanceof RespError) throw reply;
  return reply;
}

/** Parses the text of an INFO reply into key/value pairs (section headers are skipped). */
export function parseInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}
