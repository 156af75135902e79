/** The Redis part of an invalidation: keys of a profile, tags (all profiles), or a key prefix of a profile. */
export type InvalidationOp =
  | { kind: 'keys'; profile: string; keys: string[] }
  | { kind: 'tags'; tags: string[] }
  | { kind: 'prefix'; profile: string; prefix: string };

/** How many items an operation counts for against the bound. */
function size(op: InvalidationOp): number {
  return op.kind === 'keys' ? op.keys.length : op.kind === 'tags' ? op.tags.length : 1;
}

/**
 * Invalidations made while Redis was unavailable, kept in order (bounded by items) and replayed when it
 * returns. Replaying is safe because deleting twice is harmless — unlike writes, which are never replayed.
 */
export class DeferredInvalidations {
  private readonly ops: InvalidationOp[] = [];
  private items = 0;
  private replaying = false;
  readonly counters = { replayed: 0, dropped: 0 };

  constructor(
    private readonly maxItems: number,
    /** Called (once per overflow) when an operation is dropped because the queue is full. */
    private readonly onFull: () => void,
  ) {}

  /** Items waiting. */
  get size(): number {
    return this.items;
  }

  /** Keeps `op` for the replay; drops (and counts) it when the queue is full. */
  push(op: InvalidationOp): void {
    const n = size(op);
    if (this.items + n > this.maxItems) {
      this.counters.dropped += n;
      this.onFull();
      return;
    }
    this.ops.push(op);
    this.items += n;
  }

  /**
   * Runs the waiting operations in order with `run`. Stops at the first failure for which `retry(err)` is
   * true (Redis is down again; the next recovery resumes); other failures drop that operation
   * (`onDropped`). One replay at a time.
   */
  async replay(
    run: (op: InvalidationOp) => Promise<unknown>,
    retry: (err: unknown) => boolean,
    onDropped: (err: unknown) => void,
    stopped: () => boolean,
  ): Promise<void> {
    if (this.replaying) return;
    this.replaying = true;
    try {
      while (this.ops.length > 0 && !stopped()) {
        const op = this.ops[0];
        try {
          await run(op);
        } catch (err) {
          if (retry(err)) return;
          onDropped(err);
        }
        this.ops.shift();
        this.items -= size(op);
        this.counters.replayed += size(op);
      }
    } finally {
      this.replaying = false;
    }
  }
}
