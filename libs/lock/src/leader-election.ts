import { Logger } from '@nestjs/common';
import { describeRedisError } from '@redwing/redis';
import type { HeldLock } from './held-lock';
import { LockLostError } from './lock.errors';
import type { LeaderElectionOptions, LeaderRevokeReason, LeaderRole, Lock } from './lock.interfaces';
import type { LockService } from './lock.service';

const DEFAULT_TTL = 5_000;

/** Hooks the service passes to an election (metrics, registry). */
interface ElectionHooks {
  changed(change: 'elected' | 'revoked'): void;
  dropped(): void;
}

/**
 * Leader election over one lock: `start()` campaigns in the background; the instance holding the lock leads
 * and extends its lease every ttl/3. A leader that dies or stalls (SIGKILL, SIGSTOP, network loss) stops
 * extending, its lease expires, and a follower — retrying just after the lease's end, or at once on the
 * release message — leads within about ttl. A resumed stale leader learns it lost at its next extension or
 * when its lease's validity runs out locally (whichever is first), and its fenced writes are refused:
 * guard leader-only writes with `lease.fence`.
 * @example
 * const election = locks.createElection('compaction', {
 *   ttl: 5_000,
 *   elected: ({ fence, signal }) => startCompaction({ fence, signal }),
 *   revoked: (reason) => logger.warn(`no longer leader: ${reason}`),
 * });
 * await election.start();
 */
export class LeaderElection {
  private readonly logger: Logger;
  private readonly ttl: number;
  private lock?: HeldLock;
  private controller?: AbortController;
  private timer?: NodeJS.Timeout;
  private watchdog?: NodeJS.Timeout;
  private running = false;
  private campaigning?: Promise<void>;

  /** @internal created by `LockService.createElection()` */
  constructor(
    private readonly locks: LockService,
    /** Name of the election (the lock's resource is `leader:<name>`). */
    readonly name: string,
    private readonly options: LeaderElectionOptions,
    private readonly hooks: ElectionHooks,
  ) {
    this.logger = new Logger(`LeaderElection:${name}`);
    this.ttl = options.ttl ?? DEFAULT_TTL;
  }

  /** Whether this instance leads now: it holds the lease and the lease is still valid by the local clock. */
  get isLeader(): boolean {
    return this.lock !== undefined && this.lock.state === 'held' && Date.now() < this.lock.validUntil;
  }

  /** `leader`, `follower` (campaigning) or `stopped`. */
  get role(): LeaderRole {
    if (!this.running) return 'stopped';
    return this.isLeader ? 'leader' : 'follower';
  }

  /** The fencing token of the current term, while leading. */
  get fence(): number | undefined {
    return this.isLeader ? this.lock!.fence : undefined;
  }

  /** Start campaigning (returns at once; `elected` is called when this instance wins). */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule(0);
  }

  /** Stop campaigning; a leader releases its lease (so a follower takes over at once) and is revoked. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    clearTimeout(this.timer);
    await this.campaigning;
    const lock = this.lock;
    if (lock) {
      await this.revoke('stopped');
      await this.locks.release(lock).catch(() => undefined);
    }
    this.hooks.dropped();
  }

  private schedule(delay: number): void {
    clearTimeout(this.timer);
    if (!this.running) return;
    this.timer = setTimeout(() => {
      this.campaigning = this.lock ? this.renew() : this.campaign();
    }, delay);
  }

  private async campaign(): Promise<void> {
    let lock: Lock | null;
    try {
      // Wait up to a third of the ttl: the release message (or the lease's end) wakes the attempt.
      lock = await this.locks.acquire(`leader:${this.name}`, {
        ttl: this.ttl,
        wait: Math.floor(this.ttl / 3),
      });
    } catch (err) {
      if ((err as Error).name !== 'LockBusyError') this.logger.debug(`campaign: ${describeRedisError(err)}`);
      this.schedule(err instanceof Error && err.name === 'LockBusyError' ? 0 : Math.floor(this.ttl / 3));
      return;
    }
    if (!this.running) {
      await this.locks.release(lock).catch(() => undefined);
      return;
    }
    this.lock = lock as HeldLock;
    this.controller = new AbortController();
    this.armWatchdog();
    this.hooks.changed('elected');
    this.logger.log(`elected (fence ${lock.fence})`);
    this.call(() => this.options.elected?.({ fence: lock.fence, signal: this.controller!.signal }));
    this.schedule(Math.floor(this.ttl / 3));
  }

  private async renew(): Promise<void> {
    const lock = this.lock!;
    try {
      await this.locks.extend(lock);
      this.armWatchdog();
      this.schedule(Math.floor(this.ttl / 3));
    } catch (err) {
      await this.revoke(err instanceof LockLostError ? 'lost' : 'unavailable');
      if (!(err instanceof LockLostError)) await this.locks.release(lock).catch(() => undefined);
      this.schedule(err instanceof LockLostError ? 0 : Math.floor(this.ttl / 3));
    }
  }

  /** Step down while a third of the lease is left if no extension confirmed it (stalled event loop, slow Redis). */
  private armWatchdog(): void {
    clearTimeout(this.watchdog);
    const lock = this.lock!;
    this.watchdog = setTimeout(
      () => {
        if (this.lock !== lock) return;
        // Owner-only release: removes the lease if it is still ours, so nobody waits out its rest.
        void this.revoke('lost')
          .then(() => this.locks.release(lock))
          .catch(() => undefined)
          .then(() => this.schedule(0));
      },
      Math.max(0, lock.validUntil - Date.now() - Math.floor(this.ttl / 3)),
    );
  }

  private async revoke(reason: LeaderRevokeReason): Promise<void> {
    const lock = this.lock;
    if (!lock) return;
    this.lock = undefined;
    clearTimeout(this.watchdog);
    this.controller?.abort(
      new LockLostError(lock.resource, lock.fence, reason === 'stopped' ? 'released' : 'expired'),
    );
    this.hooks.changed('revoked');
    this.logger.log(`revoked (${reason}, fence ${lock.fence})`);
    this.call(() => this.options.revoked?.(reason));
  }

  private call(fn: () => void | Promise<void>): void {
    try {
      void Promise.resolve(fn()).catch((err: unknown) =>
        this.logger.error(`callback failed: ${String(err)}`),
      );
    } catch (err) {
      this.logger.error(`callback failed: ${String(err)}`);
    }
  }
}
