// Closing the Nest context ends every connection the session lib used (command and subscriber) and leaves no
// timer behind, also after an outage left a timed-out create to compensate.
import { RedisServer, stopAll } from '../../../test/harness';
import { bootSessions } from './helpers';

afterAll(() => stopAll());

it('ends its connections and timers on shutdown', async () => {
  const redis = await RedisServer.start();
  try {
    const { module, sessions, manager } = await bootSessions({ url: redis.url() });
    await sessions.create({ userId: 'x' });
    redis.pause();
    await expect(sessions.create({ userId: 'y' })).rejects.toMatchObject({ name: 'SessionUnavailableError' });
    redis.resume();
    const client = manager.get();
    const conns = [client.command, client.subscriber()];
    await module.close();
    expect(conns.map((c) => c.status)).toEqual(['end', 'end']);
  } finally {
    await redis.stop();
  }
});
