import { describeRedisError, isRedisUnavailable } from '@redwing/redis';

/** One resumable event waiting to be written. */
export interface BufferedEvent {
  channel: string;
  json: string;
}

/** What the buffer needs from the service. */
export interface OfflineBufferHost {
  maxEvents: number;
  retryInterval: number;
  /** Append one event to its stream (the append script). */
  write(item: BufferedEvent): Promise<string>;
  isAvailable(): boolean;
  drop(reason: 'offline-buffer-full' | 'write-error'): void;
  warn(message: string): void;
}

/**
 * Resumable publishes made while Redis is unavailable: bounded (the oldest is dropped, and counted, when
 * full), written oldest first once Redis answers again; a write that fails for an outage stops the flush
 * and it is retried every `retryInterval` ms.
 */
export class OfflineBuffer {
  private readonly items: BufferedEvent[] = [];
  private flushing = false;
  private timer?: NodeJS.Timeout;
  private stopped = false;

  constructor(private readonly host: OfflineBufferHost) {}

  get size(): number {
    return this.items.length;
  }

  /** Hold an event (dropping the oldest when full) and schedule a write attempt. */
  hold(item: BufferedEvent): void {
    if (this.host.maxEvents === 0) {
      this.host.drop('offline-buffer-full');
      return;
    }
    if (this.items.length >= this.host.maxEvents) {
      this.items.shift();
      this.host.drop('offline-buffer-full');
    }
    this.items.push(item);
    this.schedule();
  }

  /** Write what is held, oldest first; stop at the first outage and retry later. */
  async flush(): Promise<void> {
    if (this.flushing || this.stopped || !this.items.length) return;
    this.flushing = true;
    try {
      while (this.items.length && !this.stopped && this.host.isAvailable()) {
        try {
          await this.host.write(this.items[0]);
        } catch (err) {
          if (isRedisUnavailable(err)) break;
          this.host.warn(`dropped a buffered event of ${this.items[0].channel}: ${describeRedisError(err)}`);
          this.host.drop('write-error');
        }
        this.items.shift();
      }
    } finally {
      this.flushing = false;
      if (this.items.length) this.schedule();
    }
  }

  /** Stop retrying; returns how many events were still held. */
  stop(): number {
    this.stopped = true;
    clearTimeout(this.timer);
    return this.items.length;
  }

  private schedule(): void {
    if (this.timer || this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, this.host.retryInterval);
    this.timer.unref();
  }
}
