// RELIABILITY.md "Locks": fencing under pause (a holder in a child process SIGSTOPped past its TTL while
// 8 contenders × 10 iterations run: 0 overlapping critical sections accepted at the resource, tokens strictly
// increasing) and fail closed (Redis unreachable during acquire or extend: never granted; a failed extension
// aborts the signal within TTL/3). Owner-only release is in lock.int-spec.ts (both topologies).
import { LockLostError, LockUnavailableError, type Lock } from '@redwing/lock';
import { FaultProxy, RedisServer, sleep, stopAll, waitFor } from '../../../test/harness';
import { bootLocks, LockProcess, metricValue, type Booted } from './helpers';

afterAll(() => stopAll());

describe('fencing under pause', () => {
  let server: RedisServer;
  let booted: Booted;
  let holder: LockProcess;

  beforeAll(async () => {
    server = await RedisServer.start();
    [booted, holder] = await Promise.all([bootLocks({ url: server.url() }), LockProcess.start(server.url())]);
  }, 60_000);

  afterAll(async () => {
    await holder?.stop();
    await booted?.module.close();
  });

  it('a holder paused past its TTL: 8 contenders x 10 sections, 0 overlaps accepted, tokens increasing', async () => {
    const { locks } = booted;
    holder.send({ hold: 'doc', ttl: 400 });
    const inside = await holder.next('inside');
    expect(inside.accepted).toBe(true);
    process.kill(holder.pid, 'SIGSTOP');

    interface Section {
      fence: number;
      enter: boolean;
      exit: boolean;
    }
    const sections: Section[] = [];
    /** Accepted writes in the order the resource accepted them (the lock serializes the contenders). */
    const accepted: Array<{ fence: number; what: string }> = [];
    const contender = async (id: number) => {
      for (let i = 0; i < 10; i++) {
        const lock: Lock = await locks.acquire('doc', { ttl: 2_000, wait: 20_000 });
        const section: Section = { fence: lock.fence, enter: false, exit: false };
        sections.push(section);
        section.enter = (await locks.writeFenced('fenced', lock, `enter:${id}`)).accepted;
        if (section.enter) accepted.push({ fence: lock.fence, what: 'enter' });
        await sleep(Math.random() * 5);
        section.exit = (await locks.writeFenced('fenced', lock, `exit:${id}`)).accepted;
        if (section.exit) accepted.push({ fence: lock.fence, what: 'exit' });
        await locks.release(lock);
      }
    };
    const running = Promise.all(Array.from({ length: 8 }, (_, id) => contender(id)));
    // The paused holder's lease (400 ms) runs out; contenders take over. Resume it in the middle of their run.
    await sleep(1_000);
    process.kill(holder.pid, 'SIGCONT');
    holder.send('write');
    const late = await holder.next('accepted');
    await running;

    // The resumed holder still believes it holds the lock: its write is refused, its extension fails.
    expect(late.accepted).toBe(false);
    expect(late.extend).toBe('LockLostError');
    expect(sections).toHaveLength(80);
    expect(sections.every((s) => s.enter && s.exit)).toBe(true);
    // Tokens strictly increasing in grant order, all above the paused holder's.
    expect(sections[0].fence).toBeGreaterThan(inside.inside as number);
    for (let i = 1; i < sections.length; i++)
      expect(sections[i].fence).toBeGreaterThan(sections[i - 1].fence);
    // 0 overlapping sections accepted: every accepted enter is followed by its own exit before the next enter.
    let overlaps = 0;
    for (let i = 0; i < accepted.length; i += 2) {
      const [enter, exit] = [accepted[i], accepted[i + 1]];
      if (enter.what !== 'enter' || exit?.what !== 'exit' || exit.fence !== enter.fence) overlaps++;
    }
    expect(overlaps).toBe(0);
    expect(await locks.readFenced('fenced')).toMatchObject({ fence: sections[79].fence });
  }, 60_000);
});

describe('fail closed', () => {
  let server: RedisServer;
  let proxy: FaultProxy;
  let booted: Booted;
  let n = 0;
  const res = () => `fc-${++n}`;

  beforeAll(async () => {
    server = await RedisServer.start();
    proxy = await FaultProxy.start(server.endpoint);
    booted = await bootLocks({ url: `redis://127.0.0.1:${proxy.port}` }, { ttl: 900 });
  }, 30_000);

  afterAll(async () => {
    await booted?.module.close();
    await proxy?.stop();
  });

  afterEach(async () => {
    proxy.setMode('pass');
    // The next test starts on a connection that answers (it may be reconnecting after a reset or refusal).
    const client = booted.manager.get();
    // A black-holed socket stays open and silent: reconnect instead of waiting for the stuck detector.
    client.command.disconnect(true);
    await waitFor(
      'Redis answering again',
      20_000,
      async () => client.isAvailable() && (await client.command.ping()) === 'PONG',
    );
  }, 25_000);

  /** Records when each extension starts, so a test can measure from the failing one. */
  function recordExtensions(): number[] {
    const starts: number[] = [];
    const { locks } = booted;
    const extend = locks.extend.bind(locks);
    locks.extend = (lock, ttl) => {
      starts.push(Date.now());
      return extend(lock, ttl);
    };
    return starts;
  }

  it('Redis black-holed during acquire: LockUnavailableError, nothing granted', async () => {
    const r = res();
    proxy.setMode('blackhole');
    const results = await Promise.allSettled([
      booted.locks.acquire(r, { wait: 2_000 }),
      booted.locks.tryAcquire(`${r}-b`),
      booted.locks.acquire(`${r}-c`, { wait: 0 }),
    ]);
    expect(results.map((x) => x.status)).toEqual(['rejected', 'rejected', 'rejected']);
    for (const x of results) expect((x as PromiseRejectedResult).reason).toBeInstanceOf(LockUnavailableError);
    expect(
      await metricValue(booted.metrics, 'redwing_lock_acquisitions_total{outcome="unavailable"}'),
    ).toBeGreaterThanOrEqual(3);
  });

  it('Redis down (connection refused) during acquire: fails at once, never a local lock', async () => {
    proxy.setMode('refuse');
    booted.manager.get().command.disconnect(true);
    await sleep(100);
    const started = Date.now();
    await expect(booted.locks.acquire(res(), { wait: 5_000 })).rejects.toBeInstanceOf(LockUnavailableError);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('a failed extension (connection reset) aborts the signal within TTL/3 of the attempt', async () => {
    const starts = recordExtensions();
    const ttl = 1_500;
    let abortedAt = 0;
    const outcome = booted.locks.using(
      res(),
      (signal) =>
        new Promise<string>((resolve) => {
          signal.addEventListener('abort', () => {
            abortedAt = Date.now();
            resolve('aborted');
          });
          setTimeout(() => proxy.setMode('reset'), 700);
        }),
      { ttl },
    );
    await expect(outcome).rejects.toBeInstanceOf(LockLostError);
    expect(abortedAt).toBeGreaterThan(0);
    const failing = starts.filter((t) => t <= abortedAt).at(-1)!;
    expect(abortedAt - failing).toBeLessThanOrEqual(ttl / 3);
  });

  it('an extension lost in a black hole aborts the signal within TTL/3 of the attempt, before the lease ends', async () => {
    const starts = recordExtensions();
    // TTL/3 (300 ms) is shorter than the command timeout (500 ms): the abort must not wait for the timeout.
    const ttl = 900;
    let abortedAt = 0;
    let reason: unknown;
    let validUntil = 0;
    const outcome = booted.locks.using(
      res(),
      (signal, lock) =>
        new Promise<void>((resolve) => {
          signal.addEventListener('abort', () => {
            abortedAt = Date.now();
            reason = signal.reason;
            validUntil = lock.validUntil;
            resolve();
          });
          setTimeout(() => proxy.setMode('blackhole'), 450);
        }),
      { ttl },
    );
    await expect(outcome).rejects.toBeInstanceOf(LockLostError);
    expect(reason).toBeInstanceOf(LockLostError);
    const failing = starts.filter((t) => t <= abortedAt).at(-1)!;
    expect(abortedAt - failing).toBeLessThanOrEqual(ttl / 3);
    expect(abortedAt).toBeLessThan(validUntil);
  });
});
