import { Injectable, OnModuleDestroy, Optional } from '@nestjs/common';
import { JobQueueService, type JobQueueHealth } from '@redwing/job-queue';
import { LockService, type LeaderRole } from '@redwing/lock';
import { RedisClientManager, type RedisClientHealth } from '@redwing/redis';

/** What `GET /health/ready` reports for one Redis client. `url` is redacted. */
export type RedisReadiness = Pick<RedisClientHealth, 'state' | 'breaker' | 'status' | 'latencyMs' | 'url'>;

/** Body of `GET /health/ready` while the app can serve. */
export interface ReadinessReport {
  /** `degraded` when any Redis client is not `up`: requests are served on the in-memory fallbacks. */
  status: 'ok' | 'degraded';
  redis: Record<string, RedisReadiness>;
  /** This instance's role in each leader election it takes part in (`leader` / `follower` / `stopped`). */
  leader?: Record<string, LeaderRole>;
  /**
   * The job queue: `down` with the reason when its Redis may evict jobs (enqueues are refused), `degraded`
   * while that Redis is unreachable. Either makes `status` `degraded` (the rest of the app still serves).
   */
  jobQueue?: JobQueueHealth;
  /** Time since the app module was created, in ms. */
  uptimeMs: number;
}

/** Why the app cannot serve at all (readiness answers 503). */
export type NotReadyReason = 'shutting-down' | 'health-unavailable';

/** Liveness and readiness of the gateway. Liveness never touches Redis; readiness reads the cached health. */
@Injectable()
export class HealthService implements OnModuleDestroy {
  private readonly startedAt = Date.now();
  private stopping = false;

  constructor(
    private readonly redis: RedisClientManager,
    @Optional() private readonly locks?: LockService,
    @Optional() private readonly jobs?: JobQueueService,
  ) {}

  /** Marks the app as going away, so load balancers stop sending traffic while connections drain. */
  onModuleDestroy(): void {
    this.stopping = true;
  }

  /** Milliseconds since the app module was created. */
  uptime(): number {
    return Date.now() - this.startedAt;
  }

  /**
   * Readiness from the health monitor's last results (no command is sent to Redis here), or the reason the
   * app cannot serve at all.
   */
  readiness(): ReadinessReport | { notReady: NotReadyReason } {
    if (this.stopping) return { notReady: 'shutting-down' };
    let health: Record<string, RedisClientHealth>;
    try {
      health = this.redis.getHealth();
    } catch {
      return { notReady: 'health-unavailable' };
    }
    const redis: Record<string, RedisReadiness> = {};
    for (const [name, h] of Object.entries(health)) {
      redis[name] = {
        state: h.state,
        breaker: h.breaker,
        status: h.status,
        latencyMs: h.latencyMs,
        url: h.url,
      };
    }
    const jobQueue = this.jobs?.getHealth();
    const degraded =
      Object.values(health).some((h) => h.status !== 'up') || (jobQueue && jobQueue.status !== 'up');
    const leader = this.locks?.roles();
    return {
      status: degraded ? 'degraded' : 'ok',
      redis,
      ...(leader && Object.keys(leader).length ? { leader } : {}),
      ...(jobQueue ? { jobQueue } : {}),
      uptimeMs: this.uptime(),
    };
  }
}
