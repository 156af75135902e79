import type { Lock as RedlockLock } from 'redlock';
import type { ResourceKeys } from './lock-authority';
import type { Lock } from './lock.interfaces';

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
