// Leader election across 3 processes (fixtures/lock-process.ts), ttl 1 s: exactly one leads; when the leader
// is SIGKILLed, or SIGSTOPped, another leads within TTL + 1 s; the stopped one, resumed, is revoked and its
// heartbeats fenced with its old term are refused at the shared resource (never two leaders accepted).
import { RedisServer, stopAll, waitFor } from '../../../test/harness';
import { LockProcess } from './helpers';

afterAll(() => stopAll());

const TTL = 1_000;

describe('LeaderElection failover', () => {
  let server: RedisServer;
  let procs: LockProcess[] = [];

  beforeAll(async () => {
    server = await RedisServer.start();
    procs = await Promise.all([0, 1, 2].map(() => LockProcess.start(server.url())));
  }, 60_000);

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
  });

  /** Processes that reported `elected` (not yet consumed), with the fence and when it was seen. */
  async function nextLeader(
    among: LockProcess[],
    timeout: number,
  ): Promise<{ proc: LockProcess; fence: number; at: number }> {
    return waitFor(
      'a new leader',
      timeout,
      () => {
        for (const proc of among) {
          const i = proc.messages.findIndex((m) => 'elected' in m);
          if (i >= 0) return { proc, fence: proc.messages.splice(i, 1)[0].elected as number, at: Date.now() };
        }
        return undefined;
      },
      { intervalMs: 5 },
    );
  }

  async function roles(among: LockProcess[]): Promise<string[]> {
    return Promise.all(
      among.map(async (p) => {
        p.send('role');
        return (await p.next('role')).role as string;
      }),
    );
  }

  it('one leader; SIGKILL and SIGSTOP of the leader hand over within TTL + 1 s; a resumed leader is fenced out', async () => {
    for (const p of procs) p.send({ elect: 'singleton', ttl: TTL });
    const first = await nextLeader(procs, 10_000);
    await waitFor(
      'every process campaigning',
      5_000,
      async () => (await roles(procs)).filter((r) => r === 'follower').length === 2,
    );
    expect((await roles(procs)).filter((r) => r === 'leader')).toHaveLength(1);

    // SIGKILL the leader.
    const killedAt = Date.now();
    first.proc.child.kill('SIGKILL');
    const survivors = procs.filter((p) => p !== first.proc);
    const second = await nextLeader(survivors, TTL + 3_000);
    expect(second.at - killedAt).toBeLessThanOrEqual(TTL + 1_000);
    expect(second.fence).toBeGreaterThan(first.fence);

    // SIGSTOP the new leader.
    const stoppedAt = Date.now();
    process.kill(second.proc.pid, 'SIGSTOP');
    const third = await nextLeader(
      survivors.filter((p) => p !== second.proc),
      TTL + 3_000,
    );
    expect(third.at - stoppedAt).toBeLessThanOrEqual(TTL + 1_000);
    expect(third.fence).toBeGreaterThan(second.fence);

    // Resume it: it learns it lost (revoked) and never gets a heartbeat accepted with its old term.
    process.kill(second.proc.pid, 'SIGCONT');
    const revoked = await second.proc.next('revoked', 5_000);
    expect(revoked.revoked).toBe('lost');
    const live = [second.proc, third.proc];
    expect((await roles(live)).sort()).toEqual(['follower', 'leader']);
    expect(third.proc.messages.filter((m) => 'refused' in m)).toHaveLength(0);
    expect(
      second.proc.messages.filter((m) => 'refused' in m).every((m) => (m.refused as number) === second.fence),
    ).toBe(true);
    expect(third.proc.messages.filter((m) => 'revoked' in m)).toHaveLength(0);
  }, 60_000);
});
