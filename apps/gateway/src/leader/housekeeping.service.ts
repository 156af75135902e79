import { randomUUID } from 'node:crypto';
import { Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { LockService, type LeaderElection, type LeaderLease } from '@redwing/lock';

/** Name of the gateway's leader election. */
export const HOUSEKEEPING_ELECTION = 'gateway-housekeeping';

/** The record the leader writes at every housekeeping run (fenced with its term's token). */
export interface HousekeepingRecord {
  /** Random id of the gateway instance that ran it. */
  instance: string;
  /** Runs in this leader's term. */
  runs: number;
  at: string;
}

/**
 * A leader-only singleton task: exactly one gateway instance (the elected leader) runs the periodic
 * housekeeping job; another instance takes over within about `LEADER_TTL` when the leader dies or stalls.
 * Each run writes its status record fenced with the term's token, so a stale leader (paused, then resumed)
 * cannot overwrite the current leader's record. The job itself is a status heartbeat: the place to put
 * periodic cluster-wide work (compaction, sweeps) that must not run twice.
 */
@Injectable()
export class HousekeepingService implements OnApplicationBootstrap {
  /** Random id of this instance (two gateways may share a process in tests). */
  readonly instance = randomUUID().slice(0, 8);
  private readonly logger = new Logger('Housekeeping');
  private readonly interval: number;
  private readonly election: LeaderElection;
  private timer?: NodeJS.Timeout;
  private runs = 0;

  constructor(
    private readonly locks: LockService,
    config: ConfigService,
  ) {
    this.interval = Number(config.get<string>('HOUSEKEEPING_INTERVAL') ?? 60_000);
    this.election = locks.createElection(HOUSEKEEPING_ELECTION, {
      ttl: Number(config.get<string>('LEADER_TTL') ?? 5_000),
      elected: (lease) => this.lead(lease),
      revoked: () => this.follow(),
    });
  }

  onApplicationBootstrap(): void {
    this.election.start();
  }

  /** This instance's role and the last record written by any leader. */
  async status(): Promise<{
    instance: string;
    role: string;
    fence: number | null;
    last: HousekeepingRecord | null;
  }> {
    const last = await this.locks.readFenced(HOUSEKEEPING_ELECTION).catch(() => null);
    return {
      instance: this.instance,
      role: this.election.role,
      fence: this.election.fence ?? null,
      last: last ? (JSON.parse(last.value) as HousekeepingRecord) : null,
    };
  }

  private lead({ fence, signal }: LeaderLease): void {
    this.runs = 0;
    const run = () => void this.run(fence, signal);
    run();
    this.timer = setInterval(run, this.interval);
    signal.addEventListener('abort', () => this.follow(), { once: true });
  }

  private follow(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private async run(fence: number, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    const record: HousekeepingRecord = {
      instance: this.instance,
      runs: ++this.runs,
      at: new Date().toISOString(),
    };
    try {
      const { accepted } = await this.locks.writeFenced(HOUSEKEEPING_ELECTION, fence, JSON.stringify(record));
      if (!accepted) this.logger.warn(`housekeeping record refused: a newer leader holds fence > ${fence}`);
    } catch (err) {
      this.logger.warn(`housekeeping run failed: ${(err as Error).name}`);
    }
  }
}
