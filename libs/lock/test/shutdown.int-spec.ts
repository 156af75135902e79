// Graceful shutdown: closing the app stops elections (the leader's lease is released, so another instance
// takes over at once), rejects pending waiters with LockUnavailableError, and leaves no lock timer running.
import { LockUnavailableError } from '@redwing/lock';
import { RedisServer, stopAll, waitFor } from '../../../test/harness';
import { TimerTracker } from '../../redis/test/timer-tracker';
import { bootLocks } from './helpers';

afterAll(() => stopAll());

it('closing the app releases leadership, rejects waiters and ends every connection', async () => {
  const server = await RedisServer.start();
  // Every timer created from here on (elections, waiters, both apps' Redis clients) must be gone once both
  // apps are closed. (Counting the process's timers instead raced B's own: its command hook arms a timer
  // while a command is in flight, and its election swaps timers when it takes over.)
  const timers = new TimerTracker().install();
  const [a, b] = await Promise.all([bootLocks({ url: server.url() }), bootLocks({ url: server.url() })]);
  const ea = a.locks.createElection('shutdown', { ttl: 30_000 });
  ea.start();
  await waitFor('A leads', 5_000, () => ea.role === 'leader');
  const eb = b.locks.createElection('shutdown', { ttl: 30_000 });
  eb.start();
  const held = await b.locks.acquire('busy', { ttl: 30_000 });
  const waiting = a.locks.acquire('busy', { wait: 20_000 }).catch((e: unknown) => e);

  await a.module.close();
  expect(await waiting).toBeInstanceOf(LockUnavailableError);
  expect(ea.role).toBe('stopped');
  expect(a.manager.all().every((c) => c.getConnectionState() === 'closed')).toBe(true);
  // Leadership was released, not left to expire (ttl 30 s): B leads right away.
  await waitFor('B leads', 5_000, () => eb.role === 'leader');

  await b.locks.release(held);
  await b.module.close();
  expect(eb.role).toBe('stopped');
  timers.uninstall();
  expect(timers.pending()).toEqual([]);
}, 30_000);
