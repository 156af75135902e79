/** Deletes one session (its hash and its index entry); rejects while Redis is unavailable. */
export type DeleteSession = (key: string, index: string, ref: string) => Promise<unknown>;

/**
 * Sessions whose create was sent but never answered (timeout, connection lost): Redis may still apply the
 * create later, and nobody will ever receive that id, so they are deleted once Redis answers again — at
 * once, then every second for at most 5 minutes. Timers are unref'd and cleared by `stop()`.
 */
export class SessionOrphans {
  private readonly pending = new Map<string, { index: string; ref: string; attempts: number }>();
  private timer?: NodeJS.Timeout;

  constructor(private readonly remove: DeleteSession) {}

  add(key: string, index: string, ref: string): void {
    this.pending.set(key, { index, ref, attempts: 0 });
    this.schedule(0);
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.pending.clear();
  }

  private schedule(delay: number): void {
    if (this.timer || this.pending.size === 0) return;
    this.timer = setTimeout(() => void this.sweep(), delay);
    this.timer.unref();
  }

  private async sweep(): Promise<void> {
    for (const [key, orphan] of this.pending) {
      try {
        await this.remove(key, orphan.index, orphan.ref);
        this.pending.delete(key);
      } catch {
        if (++orphan.attempts >= 300) this.pending.delete(key);
      }
    }
    this.timer = undefined;
    this.schedule(1_000);
  }
}
