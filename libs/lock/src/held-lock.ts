import type { Lock as RedlockLock } from 'redlock';
import type { ResourceKeys } from './lock-authority';
import type { Lock } from './lock.interfaces';

/**
 * Tokens reserved in Redis for one lease and not yet used: a local hand-over takes `next` (no round trip)
 * while `next <= last`. Shared by the successive local holders of the lease.
 */
export interface TokenBlock {
  next: number;
  last: number;
}

/** The service's record of a lock it granted (callers see it as the {@link Lock} interface). */
export class HeldLock implements Lock {
  state: 'held' | 'released' | 'lost' = 'held';

  constructor(
    readonly resource: string,
    readonly fence: number,
    /** redlock's lease: owner value and validity. */
    public lease: RedlockLock,
    public ttl: number,
    readonly keys: ResourceKeys,
    /** performance.now() at the grant, for the hold-time histogram. */
    readonly grantedAt: number,
    /** Unused tokens of this lease's reserved block. */
    readonly block: TokenBlock,
  ) {}

  get validUntil(): number {
    return this.lease.expiration;
  }

  /** What `JSON.stringify` and `util.inspect` show: never the owner value. */
  toJSON(): Lock & { state: string } {
    return {
      resource: this.resource,
      fence: this.fence,
      validUntil: this.validUntil,
      ttl: this.ttl,
      state: this.state,
    };
  }
}
