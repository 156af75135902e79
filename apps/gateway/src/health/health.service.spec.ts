import type { LockService } from '@redwing/lock';
import type { RedisClientHealth, RedisClientManager } from '@redwing/redis';
import { HealthService } from './health.service';

function health(name: string, overrides: Partial<RedisClientHealth> = {}): RedisClientHealth {
  return {
    name,
    url: `redis://:***@${name}:6379`,
    topology: 'standalone',
    state: 'ready',
    breaker: 'closed',
    status: 'up',
    latencyMs: 0.4,
    consecutiveFailures: 0,
    consecutiveSuccesses: 5,
    successRate: 1,
    failureRate: 0,
    lastError: null,
    checkedAt: Date.now(),
    ...overrides,
  };
}

function serviceWith(getHealth: () => Record<string, RedisClientHealth>): HealthService {
  return new HealthService({ getHealth } as unknown as RedisClientManager);
}

describe('HealthService.readiness', () => {
  it('is ok when every client is up, reporting only the public fields of each', () => {
    const report = serviceWith(() => ({
      default: health('default'),
      durable: health('durable'),
    })).readiness();
    expect(report).toEqual({
      status: 'ok',
      redis: {
        default: {
          state: 'ready',
          breaker: 'closed',
          status: 'up',
          latencyMs: 0.4,
          url: 'redis://:***@default:6379',
        },
        durable: {
          state: 'ready',
          breaker: 'closed',
          status: 'up',
          latencyMs: 0.4,
          url: 'redis://:***@durable:6379',
        },
      },
      uptimeMs: expect.any(Number),
    });
  });

  it('is degraded when any one client is not up', () => {
    const report = serviceWith(() => ({
      default: health('default'),
      durable: health('durable', { state: 'reconnecting', status: 'degraded', latencyMs: null }),
    })).readiness();
    expect(report).toMatchObject({
      status: 'degraded',
      redis: { durable: { state: 'reconnecting', latencyMs: null } },
    });
  });

  it('is degraded when only the breaker is open', () => {
    const report = serviceWith(() => ({
      default: health('default', { breaker: 'open', status: 'degraded' }),
    })).readiness();
    expect(report).toMatchObject({ status: 'degraded' });
  });

  it("reports this instance's role in each leader election", () => {
    const locks = { roles: () => ({ 'gateway-housekeeping': 'leader' }) } as unknown as LockService;
    const service = new HealthService(
      { getHealth: () => ({ default: health('default') }) } as unknown as RedisClientManager,
      locks,
    );
    expect(service.readiness()).toMatchObject({ status: 'ok', leader: { 'gateway-housekeeping': 'leader' } });
  });

  it('cannot serve once shutdown has begun, or when health cannot be read', () => {
    const stopping = serviceWith(() => ({ default: health('default') }));
    stopping.onModuleDestroy();
    expect(stopping.readiness()).toEqual({ notReady: 'shutting-down' });

    const broken = serviceWith(() => {
      throw new Error('manager closed');
    });
    expect(broken.readiness()).toEqual({ notReady: 'health-unavailable' });
  });
});
