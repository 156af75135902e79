import * as net from 'node:net';
import { setImmediate as nextTick } from 'node:timers/promises';
import { HOST, reservePort } from './ports';
import { registerStoppable, unregisterStoppable } from './process-registry';
import { RespReader } from './resp';
import { sleep } from './wait';

/**
 * - `pass`: forward both ways.
 * - `blackhole`: accept and read, forward nothing either way (existing and new connections);
 *   bytes received meanwhile are dropped, not delivered later.
 * - `reset`: destroy every client socket with a TCP RST, now and on every new connection.
 * - `refuse`: close every new connection right after accepting it (existing ones continue).
 */
export type ProxyMode = 'pass' | 'blackhole' | 'reset' | 'refuse';

interface Settings {
  readonly mode: ProxyMode;
  readonly latencyMs: number;
  readonly chunkSize: number | null;
}

/** One direction of one connection: applies latency and chunking, preserving order. */
class Lane {
  private chain: Promise<void> = Promise.resolve();
  private queued = 0;
  private lastDue = 0;

  constructor(
    private readonly settings: Settings,
    private readonly src: net.Socket,
    private readonly dst: net.Socket,
  ) {}

  push(data: Buffer): void {
    if (this.settings.mode !== 'pass') return;
    const { latencyMs, chunkSize } = this.settings;
    if (latencyMs === 0 && chunkSize === null && this.queued === 0) {
      this.writeNow(data);
      return;
    }
    const due = Math.max(Date.now() + latencyMs, this.lastDue);
    this.lastDue = due;
    this.queued++;
    this.chain = this.chain
      .then(() => this.deliver(data, due))
      .catch(() => undefined)
      .then(() => {
        this.queued--;
      });
  }

  /** Resolves once everything queued so far was written (or dropped). */
  drained(): Promise<void> {
    return this.chain;
  }

  private writeNow(data: Buffer): void {
    if (this.dst.destroyed || !this.dst.writable) return;
    if (!this.dst.write(data) && !this.src.isPaused()) {
      this.src.pause();
      this.dst.once('drain', () => this.src.resume());
    }
  }

  private async deliver(data: Buffer, due: number): Promise<void> {
    const wait = due - Date.now();
    if (wait > 0) await sleep(wait);
    const size = this.settings.chunkSize;
    if (size === null) {
      if (this.settings.mode === 'pass') this.writeNow(data);
      return;
    }
    for (let i = 0; i < data.length; i += size) {
      if (this.settings.mode !== 'pass' || this.dst.destroyed) return;
      this.dst.write(data.subarray(i, i + size));
      // Let the receiver's event loop turn so that it reads the slices separately.
      await nextTick();
    }
  }
}

interface Conn {
  client: net.Socket;
  upstream: net.Socket;
  reader: RespReader;
  parseBroken: boolean;
  upstreamGone: boolean;
  toServer: Lane;
  toClient: Lane;
}

/**
 * A TCP proxy on 127.0.0.1:<free port> in front of `target`, with switchable faults (see
 * {@link ProxyMode}), latency, chunking and a count of the RESP commands clients send.
 */
export class FaultProxy implements Settings {
  private modeValue: ProxyMode = 'pass';
  private latency = 0;
  private chunk: number | null = null;
  private readonly conns = new Set<Conn>();
  private readonly counts = new Map<string, number>();
  private total = 0;
  private stopping?: Promise<void>;

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
    readonly target: { host: string; port: number },
  ) {}

  /** Starts listening on 127.0.0.1:<free port> in `pass` mode. */
  static async start(target: { host: string; port: number }): Promise<FaultProxy> {
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port: 0, host: HOST, exclusive: true }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const port = (server.address() as net.AddressInfo).port;
    reservePort(port);
    const proxy = new FaultProxy(server, port, { host: target.host, port: target.port });
    server.on('connection', (socket) => proxy.accept(socket));
    server.on('error', () => undefined);
    registerStoppable(proxy);
    return proxy;
  }

  /** Current mode. */
  get mode(): ProxyMode {
    return this.modeValue;
  }

  /** Added one-way delay in ms (applies to both directions). */
  get latencyMs(): number {
    return this.latency;
  }

  /** Size of the slices forwarded data is cut into, or null for no slicing. */
  get chunkSize(): number | null {
    return this.chunk;
  }

  /** Switches the fault mode; takes effect immediately for existing connections too. */
  setMode(mode: ProxyMode): void {
    this.modeValue = mode;
    if (mode === 'reset') {
      for (const c of [...this.conns]) this.reset(c);
    } else if (mode === 'pass') {
      // Connections whose server side went away while black-holed cannot carry traffic again.
      for (const c of [...this.conns]) if (c.upstreamGone) c.client.destroy();
    }
  }

  /** Adds `ms` of delay to each direction (order preserved). 0 disables. */
  setLatency(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`setLatency: bad value ${ms}`);
    this.latency = ms;
  }

  /** Forwards data in writes of at most `bytes` bytes (e.g. 1); null disables. */
  setChunkSize(bytes: number | null): void {
    if (bytes !== null && (!Number.isInteger(bytes) || bytes < 1)) {
      throw new RangeError(`setChunkSize: bad value ${bytes}`);
    }
    this.chunk = bytes;
  }

  /**
   * RESP commands seen from clients (also in blackhole mode), by upper-cased name, e.g.
   * commandCount('GET'); without a name, the total.
   */
  commandCount(name?: string): number {
    return name === undefined ? this.total : (this.counts.get(name.toUpperCase()) ?? 0);
  }

  /** Zeroes the command counts. */
  resetCounts(): void {
    this.counts.clear();
    this.total = 0;
  }

  /** Number of client connections currently open. */
  connections(): number {
    return this.conns.size;
  }

  /** Closes the listener and every socket. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      for (const c of [...this.conns]) {
        c.client.destroy();
        c.upstream.destroy();
      }
      this.conns.clear();
    }).finally(() => unregisterStoppable(this));
    return this.stopping;
  }

  private accept(client: net.Socket): void {
    client.on('error', () => undefined);
    if (this.stopping || this.modeValue === 'refuse') {
      client.destroy();
      return;
    }
    if (this.modeValue === 'reset') {
      client.resetAndDestroy();
      return;
    }
    client.setNoDelay(true);
    const upstream = net.connect({ host: this.target.host, port: this.target.port });
    upstream.setNoDelay(true);
    upstream.on('error', () => undefined);
    const conn: Conn = {
      client,
      upstream,
      reader: new RespReader(true),
      parseBroken: false,
      upstreamGone: false,
      toServer: new Lane(this, client, upstream),
      toClient: new Lane(this, upstream, client),
    };
    this.conns.add(conn);
    client.on('data', (data: Buffer) => {
      this.count(conn, data);
      conn.toServer.push(data);
    });
    upstream.on('data', (data: Buffer) => conn.toClient.push(data));
    client.on('close', () => {
      this.conns.delete(conn);
      upstream.destroy();
    });
    upstream.on('close', () => {
      conn.upstreamGone = true;
      // A black hole keeps the client hanging even when the server is gone.
      if (this.modeValue === 'blackhole') return;
      void conn.toClient.drained().then(() => client.end());
    });
  }

  private reset(c: Conn): void {
    this.conns.delete(c);
    if (!c.client.destroyed) c.client.resetAndDestroy();
    c.upstream.destroy();
  }

  private count(conn: Conn, data: Buffer): void {
    if (conn.parseBroken) return;
    try {
      conn.reader.push(data);
      for (
        let name = conn.reader.nextCommandName();
        name !== undefined;
        name = conn.reader.nextCommandName()
      ) {
        this.counts.set(name, (this.counts.get(name) ?? 0) + 1);
        this.total++;
      }
    } catch {
      // Not RESP (e.g. TLS bytes): stop counting this connection, keep forwarding.
      conn.parseBroken = true;
    }
  }
}
