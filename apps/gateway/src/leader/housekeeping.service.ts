import { randomUUID } from 'node:crypto';
import { Injectable, Logger, Optional, type OnApplicationBootstrap } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { LockService, type LeaderElection, type LeaderLease } from '@redwing/lock';
import { SeriesService } from '@redwing/metrics';
import { PubSubService } from '@redwing/pubsub';

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

/** Live channel of the cluster digest (any live client may subscribe). */
export const STATS_CHANNEL = 'stats';

/** `stats.minute` on {@link STATS_CHANNEL}: the cluster's last complete minute, published by the leader. */
export interface StatsMinuteEvent {
  /** Start of the minute, epoch ms. */
  minute: number;
  /** Requests and 5xx errors over every gateway instance in that minute. */
  requests: number;
  errors: number;
  /** Instances that recorded anything in that minute. */
  instances: number;
  /** The leader that published it, its term's fence and run number (a reader can check: one publisher). */
  by: string;
  fence: number;
  run: number;
}

const MINUTE = 60_000;

/**
 * A leader-only singleton task: exactly one gateway instance (the elected leader) runs the periodic
 * housekeeping job; another instance takes over within about `LEADER_TTL` when the leader dies or stalls.
 * Each run writes its status record fenced with the term's token, so a stale leader (paused, then resumed)
 * cannot overwrite the current leader's record, and only a run whose record was accepted goes on to its
 * work: the **cluster digest**. It reads the last complete minute of the cluster-wide series (requests and
 * errors over every instance) and publishes it as `stats.minute` on the live channel `stats` — once per
 * interval for the whole cluster, where every instance doing it would send each subscriber one copy per
 * instance. Without the series (metrics off) or pub/sub the run stops at its record.
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
    @Optional() private readonly series?: SeriesService,
    @Optional() private readonly pubsub?: PubSubService,
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
      if (!accepted) {
        this.logger.warn(`housekeeping record refused: a newer leader holds fence > ${fence}`);
        return;
      }
      if (!signal.aborted) await this.publishDigest(fence, record.runs);
    } catch (err) {
      this.logger.warn(`housekeeping run failed: ${(err as Error).name}`);
    }
  }

  /** Publish the last complete minute of the cluster-wide series on the live `stats` channel. */
  private async publishDigest(fence: number, run: number): Promise<void> {
    if (!this.series?.enabled || !this.pubsub) return;
    const minute = Math.floor(Date.now() / MINUTE) * MINUTE - MINUTE;
    const result = await this.series.query({
      from: minute,
      to: minute + MINUTE - 1,
      names: ['requests', 'errors'],
    });
    const data: StatsMinuteEvent = {
      minute,
      requests: result.series.requests?.sum ?? 0,
      errors: result.series.errors?.sum ?? 0,
      instances: result.instances,
      by: this.instance,
      fence,
      run,
    };
    await this.pubsub.publishEvent(STATS_CHANNEL, { type: 'stats.minute', data });
  }
}
