// Issue 11 items 3 and 7 against a real redis-server, with MetricsModule (tracing on, spans kept by a real SDK
// span processor): every acquisition runs in a `lock.wait` child span of the caller's span; /metrics counts
// acquisitions by outcome, wait and hold times, lost leases by reason and leader changes; a waiter whose release
// message never comes (nobody published it) still gets the lock through its jittered retry, inside its wait.
import { Test, type TestingModule } from '@nestjs/testing';
import { MetricsModule, MetricsService, withSpan } from '@redwing/metrics';
import { LockBusyError, LockLostError, LockModule, LockService } from '@redwing/lock';
import { RedisClientManager, RedisClientModule } from '@redwing/redis';
import { fastRedisOptions, RedisServer, stopAll, waitFor } from '../../../test/harness';
import { MemorySpans } from '../../metrics/test/memory-spans';
import { metricValue, sleep } from './helpers';

let server: RedisServer;
const store = new MemorySpans();

beforeAll(async () => {
  server = await RedisServer.start();
});

afterAll(() => stopAll());

interface Instance {
  module: TestingModule;
  locks: LockService;
  metrics: MetricsService;
  manager: RedisClientManager;
}

async function boot(retryInterval = 10_000): Promise<Instance> {
  const module = await Test.createTestingModule({
    imports: [
      RedisClientModule.forRoot({ ...fastRedisOptions({ commandTimeout: 1_000 }), url: server.url() }),
      MetricsModule.forRoot({
        serviceName: 'lock-observability',
        useEnv: false,
        defaultMetrics: false,
        series: false,
        path: false,
        tracing: { enabled: true, spanProcessors: [store.processor] },
      }),
      LockModule.forRoot({ useEnv: false, ttl: 5_000, retryInterval }),
    ],
  }).compile();
  await module.init();
  const manager = module.get(RedisClientManager);
  await manager.get().waitUntilReady(10_000);
  return { module, locks: module.get(LockService), metrics: module.get(MetricsService), manager };
}

describe('lock observability', () => {
  let a: Instance;
  let b: Instance;

  beforeAll(async () => {
    [a, b] = await Promise.all([boot(), boot()]);
  }, 30_000);

  afterAll(async () => {
    await a?.module.close();
    await b?.module.close();
  });

  it('acquire() runs in a `lock.wait` child span of the caller, for a grant and for a give-up', async () => {
    store.clear();
    const held = await withSpan('caller', undefined, () =>
      a.locks.acquire('span-res', { ttl: 2_000, wait: 0 }),
    );
    await withSpan('contender', undefined, () =>
      expect(b.locks.acquire('span-res', { wait: 100 })).rejects.toBeInstanceOf(LockBusyError),
    );
    await a.locks.release(held);

    const spans = store.exporter.getFinishedSpans();
    const byName = (name: string) => spans.filter((s) => s.name === name);
    expect(byName('lock.wait')).toHaveLength(2);
    for (const parentName of ['caller', 'contender']) {
      const [parent] = byName(parentName);
      const child = byName('lock.wait').find(
        (s) => s.parentSpanContext?.spanId === parent.spanContext().spanId,
      );
      expect(child).toBeDefined();
      expect(child!.spanContext().traceId).toBe(parent.spanContext().traceId);
      expect(child!.attributes).toMatchObject({ 'lock.ttl_ms': expect.any(Number) });
    }
    const [contended] = byName('lock.wait').filter((s) => s.attributes['lock.wait_budget_ms'] === 100);
    expect(contended).toBeDefined();
  });

  it('counts acquisitions by outcome, wait and hold times, lost leases and leader changes in /metrics', async () => {
    const before = {
      acquired: await metricValue(a.metrics, 'redwing_lock_acquisitions_total{outcome="acquired"}'),
      busy: await metricValue(a.metrics, 'redwing_lock_acquisitions_total{outcome="busy"}'),
      waits: await metricValue(a.metrics, 'redwing_lock_wait_seconds_count{outcome="acquired"}'),
      holds: await metricValue(a.metrics, 'redwing_lock_hold_seconds_count'),
      expired: await metricValue(a.metrics, 'redwing_lock_lost_total{reason="expired"}'),
      elected: await metricValue(a.metrics, 'redwing_lock_leader_changes_total{change="elected"}'),
      revoked: await metricValue(a.metrics, 'redwing_lock_leader_changes_total{change="revoked"}'),
    };

    const lock = await a.locks.acquire('metrics-res', { ttl: 2_000 });
    expect(await a.locks.tryAcquire('metrics-res')).toBeNull();
    await a.locks.release(lock);
    // A lease that runs out before its extension: lost (expired).
    const short = await a.locks.acquire('metrics-short', { ttl: 100 });
    await sleep(200);
    await expect(a.locks.extend(short)).rejects.toBeInstanceOf(LockLostError);

    const election = a.locks.createElection('metrics-election', { ttl: 1_000 });
    election.start();
    await waitFor('A leads', 5_000, () => election.role === 'leader');
    expect(await metricValue(a.metrics, 'redwing_lock_leader_state{election="metrics-election"}')).toBe(1);
    await election.stop();

    const after = (line: string) => metricValue(a.metrics, line);
    expect(await after('redwing_lock_acquisitions_total{outcome="acquired"}')).toBeGreaterThanOrEqual(
      before.acquired + 3,
    );
    expect(await after('redwing_lock_acquisitions_total{outcome="busy"}')).toBe(before.busy + 1);
    expect(await after('redwing_lock_wait_seconds_count{outcome="acquired"}')).toBeGreaterThanOrEqual(
      before.waits + 3,
    );
    expect(await after('redwing_lock_hold_seconds_count')).toBeGreaterThanOrEqual(before.holds + 2);
    expect(await after('redwing_lock_lost_total{reason="expired"}')).toBe(before.expired + 1);
    expect(await after('redwing_lock_leader_changes_total{change="elected"}')).toBe(before.elected + 1);
    expect(await after('redwing_lock_leader_changes_total{change="revoked"}')).toBe(before.revoked + 1);
  });
});

describe('waiting when the release message is missed', () => {
  let a: Instance;
  let b: Instance;

  beforeAll(async () => {
    // retryInterval 100 ms: the fallback under test. The holder's lease (30 s) is far longer than the wait.
    [a, b] = await Promise.all([boot(100), boot(100)]);
  }, 30_000);

  afterAll(async () => {
    await a?.module.close();
    await b?.module.close();
  });

  it('a waiter that misses the release message gets the lock by its jittered retry, within its wait', async () => {
    // B stops listening to release messages; A's release still publishes one, B does not hear it.
    const command = a.manager.get().command;
    const channel = `${b.manager.key('lock', '')}released`;
    const listeners = async () => ((await command.pubsub('NUMSUB', channel)) as [string, number])[1];
    await waitFor('A and B subscribed', 5_000, async () => (await listeners()) === 2);
    await b.manager.get().subscriber().unsubscribe(channel);
    await waitFor('only A subscribed', 5_000, async () => (await listeners()) === 1);
    const held = await a.locks.acquire('missed-res', { ttl: 30_000 });
    const waiting = b.locks.acquire('missed-res', { ttl: 2_000, wait: 3_000 });
    const waitingKey = a.locks.keys('missed-res').waiting;
    await waitFor('B registered as waiting', 2_000, async () => (await command.exists(waitingKey)) === 1);
    expect(await a.locks.release(held)).toBe(true);

    // Without the fallback B would sit until its wait ran out (LockBusyError): the lease had 30 s left.
    const lock = await waiting;
    expect(lock.fence).toBeGreaterThan(held.fence);
    await b.locks.release(lock);
  });
});
