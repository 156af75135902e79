import { RedisEvents } from './redis-events';

describe('RedisEvents', () => {
  const event = { client: 'default', command: 'get', durationMs: 1, outcome: 'ok' as const };

  it('tracks whether command events are observed, so the hot path can skip building them', () => {
    const events = new RedisEvents();
    expect(events.commandObserved).toBe(false);
    const off = events.on('command', () => undefined);
    expect(events.commandObserved).toBe(true);
    off();
    expect(events.commandObserved).toBe(false);
    expect(events.listenerCount()).toBe(0);
  });

  it('keeps calling the other listeners when one throws', () => {
    const events = new RedisEvents();
    const seen: string[] = [];
    events.on('command', () => {
      throw new Error('listener bug');
    });
    events.on('command', (e) => seen.push(e.command));
    expect(() => events.emit('command', event)).not.toThrow();
    expect(seen).toEqual(['get']);
  });

  it('removes only the listener asked for, even while emitting', () => {
    const events = new RedisEvents();
    const calls: string[] = [];
    const a = () => {
      calls.push('a');
      offA();
    };
    const offA = events.on('command', a);
    events.on('command', () => calls.push('b'));
    events.emit('command', event);
    events.emit('command', event);
    expect(calls).toEqual(['a', 'b', 'b']);
    events.removeAllListeners();
    events.emit('command', event);
    expect(calls).toHaveLength(3);
    expect(events.commandObserved).toBe(false);
  });
});
