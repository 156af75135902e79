// Graceful shutdown: closing the app stops elections (the leader's lease is released, so another instance
// takes over at once), rejects pending waiters with LockUnavailableError, and leaves no lock timer running.
import { LockUnavailableError } from '@redwing/lock';
import { RedisServer, stopAll, waitFor } from '../../../test/harness';
import { bootLocks } from './helpers';

afterAll(() => stopAll());

it('closing the app releases leadership, rejects waiters and ends every connection', async () => {
  const server = await RedisServer.start();
  const [a, b] = await Promise.all([bootLocks({ url: server.url() }), bootLocks({ url: server.url() })]);
  const ea = a.locks.createElection('shutdown', { ttl: 30_000 });
  ea.start();
  await waitFor('A leads', 5_000, () => ea.role === 'leader');
  const eb = b.locks.createElection('shutdown', { ttl: 30_000 });
  eb.start();
  const held = await b.locks.acquire('busy', { ttl: 30_000 });
  const waiting = a.locks.acquire('busy', { wait: 20_000 }).catch((e: unknown) => e);

  const timersBefore = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  await a.module.close();
  expect(await waiting).toBeInstanceOf(LockUnavailableError);
  expect(ea.role).toBe('stopped');
  expect(a.manager.all().every((c) => c.getConnectionState() === 'closed')).toBe(true);
  // Leadership was released, not left to expire (ttl 30 s): B leads right away.
  await waitFor('B leads', 5_000, () => eb.role === 'leader');
  expect(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length).toBeLessThan(timersBefore);

  await b.locks.release(held);
  await b.module.close();
  expect(eb.role).toBe('stopped');
}, 30_000);
