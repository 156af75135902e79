// 1,000 socket.io clients (split over the two instances) subscribed to one channel, counting deliveries and
// recording publish→receive latency (the publisher's performance.now() travels in the event; one process,
// one clock).
import { performance } from 'node:perf_hooks';
import { io, type Socket } from 'socket.io-client';

/** Deliveries recorded per round at most (the latency sample); counting goes on beyond it. */
const MAX_SAMPLES = 2_000_000;

export class FanOutClients {
  received = 0;
  private readonly latencies = new Float64Array(MAX_SAMPLES);
  private samples = 0;
  private waiter?: { target: number; resolve: () => void };

  private constructor(readonly sockets: Socket[]) {}

  /** Connect `count` clients, alternating between `bases`, and subscribe each to `channel`. */
  static async connect(bases: readonly string[], count: number, channel: string): Promise<FanOutClients> {
    const sockets: Socket[] = [];
    const clients = new FanOutClients(sockets);
    for (let i = 0; i < count; i += 50) {
      const batch = Array.from({ length: Math.min(50, count - i) }, (_, j) => {
        const socket = io(`${bases[(i + j) % bases.length]}/live`, {
          transports: ['websocket'],
          reconnection: false,
          forceNew: true,
        });
        sockets.push(socket);
        socket.on('event', (e: { data: { t: number } }) => clients.onEvent(e.data.t));
        return new Promise<void>((resolve, reject) => {
          socket.once('connect_error', reject);
          socket.once('connect', () => {
            socket
              .timeout(10_000)
              .emitWithAck('subscribe', { channel })
              .then(
                (r: { ok: boolean }) => (r.ok ? resolve() : reject(new Error('subscribe refused'))),
                reject,
              );
          });
        });
      });
      await Promise.all(batch);
    }
    return clients;
  }

  private onEvent(t: number): void {
    this.received++;
    if (this.samples < MAX_SAMPLES) this.latencies[this.samples++] = performance.now() - t;
    const w = this.waiter;
    if (w && this.received >= w.target) {
      this.waiter = undefined;
      w.resolve();
    }
  }

  /** Resolves when `target` deliveries have been counted, or after `timeout` ms (false). */
  until(target: number, timeout: number): Promise<boolean> {
    if (this.received >= target) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        resolve(false);
      }, timeout);
      this.waiter = {
        target,
        resolve: () => {
          clearTimeout(timer);
          resolve(true);
        },
      };
    });
  }

  /** Start a new round: zero the counters and the latency sample. */
  reset(): void {
    this.received = 0;
    this.samples = 0;
  }

  /** p50 and p99 of the round's publish→receive latencies, ms. */
  percentiles(): { p50: number; p99: number } {
    const s = this.latencies.slice(0, this.samples).sort();
    const at = (q: number) => (s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : NaN);
    return { p50: at(0.5), p99: at(0.99) };
  }

  close(): void {
    for (const s of this.sockets) s.disconnect();
  }
}
